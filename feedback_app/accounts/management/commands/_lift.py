"""axes' reset commands, replaced (accounts comes before axes in INSTALLED_APPS, so Django runs
these): the same names, arguments and output, and every lift is in the audit log."""

from __future__ import annotations

from axes.models import AccessAttempt
from django.core.management.base import BaseCommand
from django.db.models import QuerySet

from feedback_app.accounts.lockout import lockout_lift
from feedback_app.core.audit import Origin


class LiftCommand(BaseCommand):
    def attempts(self, **options) -> QuerySet[AccessAttempt]:
        raise NotImplementedError

    def handle(self, *args, **options) -> None:
        count = lockout_lift(attempts=self.attempts(**options), origin=Origin.cli())
        self.stdout.write(f"{count} attempts removed." if count else "No attempts found.")
