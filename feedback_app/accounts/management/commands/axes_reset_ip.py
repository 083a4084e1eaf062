from feedback_app.accounts.lockout import AccessAttempt
from feedback_app.accounts.management.commands._lift import LiftCommand


class Command(LiftCommand):
    help = "Lift the lockouts of these addresses (audited: lockout.lift)."

    def add_arguments(self, parser):
        parser.add_argument("ip", nargs="+", type=str)

    def attempts(self, **options):
        return AccessAttempt.objects.filter(ip_address__in=options["ip"])
