"""``manage.py bootstrap_demo``: demo users, both demo projects, and the base model's job.

Returns in seconds: the hand-written demo is usable at once, and the offline base model is set up
by a job on the worker (`build_base`: the default one is installed from the copy shipped with the
code), which queues the loop demo's first round when it is done.
"""

import os

from django.core.management.base import BaseCommand

from feedback_app.annotation import demo
from feedback_app.core.audit import Origin
from feedback_app.core.models import Job
from feedback_app.finetuning import demo as loop_demo
from feedback_app.finetuning.params import BASE_SIZES


class Command(BaseCommand):
    help = (
        "Create (or reuse) the demo users and projects, queue the job that builds (or reuses) "
        "the offline base model and then round 1 of the loop demo, and print how to log in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="URL to print")
        parser.add_argument(
            "--model-size",
            choices=BASE_SIZES,
            default=os.environ.get("DEMO_MODEL_SIZE", "default"),
            help="size of the offline base model (default: the one shipped with the code)",
        )

    def handle(self, *args, url: str, model_size: str, **options):
        explicit = os.environ.get("DEMO_PASSWORD") or None
        password, new = demo.demo_password(explicit)
        result = demo.demo_bootstrap(password=password, reset_passwords=bool(explicit))
        loop = loop_demo.loop_demo_bootstrap(model_size=model_size, origin=Origin.cli())
        where = "DEMO_PASSWORD" if explicit else "var/demo-password" + (" (new)" if new else "")
        queued = ""
        if loop.job and loop.job.kind == Job.Kind.BUILD_BASE:
            queued = (
                f"  The base model is being set up by the worker (the default one ships with the "
                f"code; other sizes are built, then cached); round 1 of {loop.project.name!r} "
                f"follows: {url}jobs/{loop.job.pk}/\n"
            )
        elif loop.job:
            queued = (
                f"  Round 1 of {loop.project.name!r} is queued for the worker: "
                f"{url}jobs/{loop.job.pk}/\n"
            )
        self.stdout.write(
            f"\nDemo ready: project {result.project.name!r} ({result.imported} new prompts) and "
            f"{loop.project.name!r}.\n"
            f"{queued}"
            f"  Open      {url}\n"
            f"  Log in as {demo.ADMIN} (admin) or {', '.join(demo.ANNOTATORS)}\n"
            f"  Password  {password}   (from {where})\n"
        )
