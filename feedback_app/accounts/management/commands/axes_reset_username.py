from feedback_app.accounts.lockout import AccessAttempt
from feedback_app.accounts.management.commands._lift import LiftCommand


class Command(LiftCommand):
    help = "Lift the lockouts of these usernames (audited: lockout.lift)."

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="+", type=str)

    def attempts(self, **options):
        return AccessAttempt.objects.filter(username__in=options["username"])
