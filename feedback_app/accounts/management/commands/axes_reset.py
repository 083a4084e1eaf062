from feedback_app.accounts.lockout import AccessAttempt
from feedback_app.accounts.management.commands._lift import LiftCommand


class Command(LiftCommand):
    help = "Lift every lockout: delete all failed-login records (audited: lockout.lift)."

    def attempts(self, **options):
        return AccessAttempt.objects.all()
