from feedback_app.accounts.lockout import AccessAttempt
from feedback_app.accounts.management.commands._lift import LiftCommand


class Command(LiftCommand):
    help = "Lift the lockout of one username from one address (audited: lockout.lift)."

    def add_arguments(self, parser):
        parser.add_argument("ip", type=str)
        parser.add_argument("username", type=str)

    def attempts(self, **options):
        return AccessAttempt.objects.filter(ip_address=options["ip"], username=options["username"])
