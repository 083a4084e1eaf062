"""``manage.py bootstrap_demo``: demo users, both demo projects, the offline base model."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand

from feedback_app.annotation import demo
from feedback_app.core.audit import about_job, record
from feedback_app.finetuning import demo as loop_demo
from training.config import BootstrapConfig
from training.progress import TqdmProgress


class Command(BaseCommand):
    help = (
        "Create (or reuse) the demo users and projects, build (or reuse) the offline base model, "
        "queue the loop demo's first round, and print how to log in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="URL to print")
        parser.add_argument(
            "--model-size",
            choices=["default", "small", "tiny"],
            default=os.environ.get("DEMO_MODEL_SIZE", "default"),
            help="size of the offline base model (default: the ~3 minute build)",
        )

    def handle(self, *args, url: str, model_size: str, **options):
        from training.bootstrap import bootstrap_base_model  # loads torch: the command only

        explicit = os.environ.get("DEMO_PASSWORD") or None
        password, new = demo.demo_password(explicit)
        result = demo.demo_bootstrap(password=password, reset_passwords=bool(explicit))

        config = {
            "default": BootstrapConfig,
            "small": BootstrapConfig.small,
            "tiny": BootstrapConfig.tiny,
        }
        self.stdout.write("Base model: building offline (cached after the first run)...")
        bar = TqdmProgress("pretraining the base model")
        try:
            model = bootstrap_base_model(
                settings.BASE_MODEL_CACHE, config[model_size](), progress=bar
            )
        finally:
            bar.close()
        m = model.metrics
        before, after = m.get("heldout_perplexity_before"), m.get("heldout_perplexity_after")
        ppl = f"held-out perplexity {before:.0f} -> {after:.1f}" if before and after else ""
        self.stdout.write(
            f"Base model: {model.output_dir} ({'cached' if model.cached else 'built'}) {ppl}"
        )
        loop = loop_demo.loop_demo_bootstrap(base_weights=model.output_dir)
        if loop.job:
            record("job.launch", via="cli", **about_job(loop.job))

        where = "DEMO_PASSWORD" if explicit else "var/demo-password" + (" (new)" if new else "")
        queued = (
            f"  Round 1 of {loop.project.name!r} is queued for the worker: "
            f"{url}jobs/{loop.job.pk}/\n"
            if loop.job
            else ""
        )
        self.stdout.write(
            f"\nDemo ready: project {result.project.name!r} ({result.imported} new prompts) and "
            f"{loop.project.name!r}.\n"
            f"{queued}"
            f"  Open      {url}\n"
            f"  Log in as {demo.ADMIN} (admin) or {', '.join(demo.ANNOTATORS)}\n"
            f"  Password  {password}   (from {where})\n"
        )
