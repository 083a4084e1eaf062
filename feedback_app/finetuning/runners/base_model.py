"""Build the offline base model, register it as the project's base policy, and name the first
round to launch after it."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from feedback_app.core.models import Job, ModelVersion
from training.config import BootstrapConfig

from ..reporting import JobReporter
from ..rounds import round_started
from ..versions import model_register
from .common import stopped

BASE_CONFIGS = {
    "default": BootstrapConfig,
    "small": BootstrapConfig.small,
    "tiny": BootstrapConfig.tiny,
}  # the sizes params.BASE_SIZES accepts


def run_build_base(job: Job, reporter: JobReporter) -> dict:
    """Build the offline base model (or take it from the cache, at once), make it the project's
    base policy, and name the first round as the job to launch on success (`outputs["next"]`,
    launched by `services.job_launch_next`) unless a round exists or is being generated."""
    from training.bootstrap import bootstrap_base_model

    p = job.params
    config = BASE_CONFIGS[p["size"]]()
    reporter.stage(f"Building the {p['size']} base model (tokenizer, then pretraining)", 0.0)
    result = bootstrap_base_model(
        settings.BASE_MODEL_CACHE,
        config,
        progress=reporter.progress_between(0.0, 1.0, label="Pretraining"),
    )
    stopped(result)
    m = result.metrics
    reporter.log(
        f"Base model {_base_origin(result)}: {result.output_dir} "
        f"(held-out perplexity {m['heldout_perplexity_before']:.0f} -> "
        f"{m['heldout_perplexity_after']:.1f})"
    )
    base = ModelVersion.objects.filter(
        project=job.project, name="base", weights=result.output_dir
    ).first() or model_register(
        project=job.project,
        kind=ModelVersion.Kind.POLICY,
        stage=ModelVersion.Stage.BASE,
        name="base",
        weights=result.output_dir,
        job=job,
        metrics=m,
    )
    outputs: dict[str, Any] = {
        "model_version": base.pk,
        "weights": result.output_dir,
        "cached": result.cached,
        "shipped": result.shipped,
    }
    if p["first_round"] is not None and not round_started(job.project):
        outputs["next"] = {"kind": Job.Kind.GENERATE, "params": p["first_round"]}
    return outputs


def _base_origin(result: Any) -> str:
    if result.shipped:
        return "installed from the copy shipped with the code (sha256 checked)"
    return "found in the cache" if result.cached else "built"
