"""``manage.py sweep_jobs``: the job sweep in a process of its own, a pass every few seconds.

Not a Celery task on purpose: beat only *sends* a task, and a wedged or dead job worker would
never run it, which is exactly when the sweep is needed. This loop needs the database only (and
the broker to send a lost message again), so `make run` and docker compose run it beside the
workers (docs/architecture.md, "Jobs"). Each pass also advances every enabled autopilot: the
trigger is noticed here, and so is a job that ended without a worker (docs, "Autopilot"). And a
job's next job (the first run's chain) that its worker died before launching is launched here.
Once an hour (LOGIN_RECORDS_PRUNE_EVERY_SECONDS) it also prunes django-axes' login records
(accounts/lockout.py), which axes itself keeps forever.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from feedback_app.accounts.lockout import lockout_records_prune
from feedback_app.finetuning import autopilot, jobs, services

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Fail running jobs whose worker went silent or that outran the time limit, send again "
        "the message of queued jobs no worker took, and fail those in the end. Loops every "
        "JOB_SWEEP_EVERY_SECONDS until SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="make one pass and exit")

    def handle(self, *args, once: bool, **options):
        if once:
            try:
                self._report(jobs.jobs_sweep())
                services.jobs_launch_next_pending()
                autopilot.autopilot_tick()
                self._prune()
            except Exception as exc:
                raise CommandError(f"sweep failed: {exc}") from exc
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        every = settings.JOB_SWEEP_EVERY_SECONDS
        self.stdout.write(f"Sweeper ready: a pass every {every:g} s.")
        self.stdout.flush()
        next_prune = 0.0
        while not stop.is_set():
            try:
                self._report(jobs.jobs_sweep())
                services.jobs_launch_next_pending()  # a chain whose worker died mid-way
                autopilot.autopilot_tick()  # triggers, and jobs that ended with no worker
                if time.monotonic() >= next_prune:
                    self._prune()
                    next_prune = time.monotonic() + settings.LOGIN_RECORDS_PRUNE_EVERY_SECONDS
            except Exception:
                # The database or the broker may be away for a moment: say so, try next pass
                # on a fresh connection. The sweeper itself must not die of it.
                log.exception("sweep failed; trying again in %g s", every)
                connection.close()
            stop.wait(every)
        connection.close()

    def _prune(self) -> None:
        pruned = lockout_records_prune()
        if pruned:
            self.stdout.write(
                f"Pruned login records: {pruned.logins} logins, {pruned.failure_logs} failure "
                f"logs, {pruned.expired_attempts} expired failed-login records."
            )
            self.stdout.flush()

    def _report(self, result: jobs.SweepResult) -> None:
        if result:
            self.stdout.write(
                f"Swept: {result.stale} silent and {result.overtime} overtime running jobs "
                f"failed; {result.resent} queued jobs sent again, {result.unclaimed} failed "
                "unclaimed."
            )
            self.stdout.flush()
