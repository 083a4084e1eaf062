"""``manage.py watch_jobs``: progress lines in the terminal for the jobs `make run` queued.

bin/run-local starts it in the background, so the terminal shows the base model being set up
("base model (job 1): 43% (Pretraining: step 215/500), about 3 min left") and then round 1,
while the servers answer. It exits once no job of the watched kinds is queued or running; with
`--demo-url` its last line is "the loop demo is ready: <its ranking page>".
"""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand
from django.urls import reverse

from feedback_app.annotation.demo import LOOP_PROJECT
from feedback_app.core.eta import job_eta_text
from feedback_app.core.models import Job, Project
from feedback_app.finetuning import selectors
from feedback_app.finetuning.kinds import KINDS

# Short names for the terminal; other kinds show their label.
NAMES = {"build_base": "base model", "generate": "round"}
STEP_PERCENT = 5  # a running job gets a new line each time it passes this many percent


def job_line(job: Job) -> str:
    """One line about `job`: its name, then how far it is or how it ended."""
    name = NAMES.get(job.kind) or KINDS[job.kind].label
    name = f"{name} (job {job.pk})"
    if job.status == Job.Status.QUEUED:
        return f"{name}: queued, waiting for the worker"
    if job.status == Job.Status.RUNNING:
        note = f" ({job.progress_note})" if job.progress_note else ""
        eta = job_eta_text(job)
        return f"{name}: {job.progress:.0%}{note}{f', {eta}' if eta else ''}"
    if job.status == Job.Status.SUCCEEDED:
        return f"{name}: done"
    return f"{name}: {job.status}: {job.error.splitlines()[0] if job.error else ''}".rstrip(": ")


class Command(BaseCommand):
    help = (
        "Print a line each time a queued or running job of the given kinds moves on (status, or "
        f"{STEP_PERCENT} % of progress); exit when none is left."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--kind", action="append", choices=sorted(KINDS), help="kinds to watch (default: all)"
        )
        parser.add_argument("--every", type=float, default=2.0, help="seconds between looks")
        parser.add_argument(
            "--demo-url",
            help="site URL: at the end, say whether the loop demo is ready, with its ranking page",
        )

    def handle(self, *args, kind: list[str] | None, every: float, demo_url: str | None, **options):
        kinds = kind or sorted(KINDS)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        shown: dict[int, tuple] = {}  # what was last printed of each job
        idle = 0
        while not stop.is_set():
            watched = selectors.jobs_watched(kinds=kinds, seen=shown)
            for job in watched:
                state = (job.status, int(job.progress * 100) // STEP_PERCENT)
                if shown.get(job.pk) != state:
                    shown[job.pk] = state
                    self.stdout.write(job_line(job))
                    self.stdout.flush()
            # Two idle looks in a row before leaving: a job that names a successor has it
            # launched just after it succeeds (tasks.run_job), which one look could miss.
            idle = 0 if any(j.status in Job.ACTIVE for j in watched) else idle + 1
            if idle >= 2:
                break
            stop.wait(every)
        if demo_url and not stop.is_set():
            self.stdout.write(demo_line(demo_url, watched))
            self.stdout.flush()


def demo_line(site: str, watched: list[Job]) -> str:
    """The last line `make run` prints: the loop demo's ranking page, or which job failed."""
    failed = [job for job in watched if job.status != Job.Status.SUCCEEDED]
    if failed:
        return f"the loop demo is not ready: {job_line(failed[0])}"
    project = Project.objects.filter(name=LOOP_PROJECT).first()
    if project is None:
        return "the loop demo is not set up (manage.py bootstrap_demo)"
    path = reverse("annotation:annotate", args=[project.pk])
    return f"the loop demo is ready: {site.rstrip('/')}{path}"
