"""The job kinds, each declared once: everything that differs between kinds is read from here.

A kind is its name (the value stored in `Job.kind`), a label, the checker that turns accepted
params into stored params, the runner a worker calls, the queue it is sent to, the loop page's
launch form (None: launched from elsewhere, like promote), and whether it loads torch (its
threads are then limited to TORCH_THREADS). `Job.Kind` in core stays the database column's
enum; tests/finetuning/test_kinds.py checks that it and this registry agree, and that every
queue named here is configured.

Adding a kind (docs/architecture.md, "Job kinds"): its checker in `params.py`, its runner in
`runners.py`, a form in `forms.py` if the loop page launches it, one entry below, and the value
in `Job.Kind` with its migration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core.models import Project

from . import forms, runners
from . import params as checkers
from .jobs import Runner

Checker = Callable[[Project, dict[str, Any]], dict[str, Any]]
# What a kind needs of a worker: a key of settings.JOB_QUEUES, which names the Celery queue.
QUEUE_DEFAULT, QUEUE_GENERATION, QUEUE_TRAINING = "default", "generation", "training"


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    check: Checker
    run: Runner
    queue: str
    form: type[forms.LaunchForm] | None = None
    torch: bool = False

    @property
    def queue_name(self) -> str:
        """The Celery queue its messages go to (settings, so a deployment can rename them)."""
        return settings.JOB_QUEUES[self.queue]


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind(
            "generate", "Generate a round", checkers.check_generate, runners.run_generate,
            QUEUE_GENERATION, forms.GenerateForm, torch=True,
        ),
        JobKind(
            "build_dataset", "Build a dataset snapshot", checkers.check_build_dataset,
            runners.run_build_dataset, QUEUE_DEFAULT, forms.BuildDatasetForm,
        ),
        JobKind(
            "train_reward", "Train a reward model", checkers.check_train_reward,
            runners.run_train_reward, QUEUE_TRAINING, forms.TrainRewardForm, torch=True,
        ),
        JobKind(
            "train_dpo", "Train with DPO", checkers.check_train_dpo, runners.run_train_dpo,
            QUEUE_TRAINING, forms.TrainDPOForm, torch=True,
        ),
        JobKind(
            "train_sft", "Train with SFT", checkers.check_train_sft, runners.run_train_sft,
            QUEUE_TRAINING, forms.TrainSFTForm, torch=True,
        ),
        JobKind(
            "train_kto", "Train with KTO", checkers.check_train_kto, runners.run_train_kto,
            QUEUE_TRAINING, forms.TrainKTOForm, torch=True,
        ),
        JobKind(
            "train_grpo", "Train with GRPO (online RL)", checkers.check_train_grpo,
            runners.run_train_grpo, QUEUE_TRAINING, forms.TrainGRPOForm, torch=True,
        ),
        JobKind(
            "train_rloo", "Train with RLOO (online RL)", checkers.check_train_rloo,
            runners.run_train_rloo, QUEUE_TRAINING, forms.TrainRLOOForm, torch=True,
        ),
        JobKind(
            "evaluate", "Evaluate a policy", checkers.check_evaluate, runners.run_evaluate,
            QUEUE_TRAINING, forms.EvaluateForm, torch=True,
        ),
        JobKind(
            "promote", "Promote a model version", checkers.check_promote, runners.run_promote,
            QUEUE_DEFAULT,
        ),
        # Scoring is quick work (a forward pass per candidate): it must not wait behind training.
        JobKind(
            "review_scores", "Score the review queue", checkers.check_review_scores,
            runners.run_review_scores, QUEUE_GENERATION, forms.ReviewScoresForm, torch=True,
        ),
        # No launch form: `make run` (bootstrap_demo) launches it; project admins may from the
        # API (or retry it from its page), as any kind.
        JobKind(
            "build_base", "Build the offline base model", checkers.check_build_base,
            runners.run_build_base, QUEUE_TRAINING, torch=True,
        ),
    )
}  # fmt: skip

# Derived views of the registry, for the callers that need one column of it.
RUNNERS: dict[str, Runner] = {name: kind.run for name, kind in KINDS.items()}
TORCH_KINDS: frozenset[str] = frozenset(name for name, kind in KINDS.items() if kind.torch)
FORMS: dict[str, type[forms.LaunchForm]] = {
    name: kind.form for name, kind in KINDS.items() if kind.form is not None
}


def kind_get(name: Any) -> JobKind:
    """The kind called `name`, or a 400 naming `kind`."""
    if not isinstance(name, str) or name not in KINDS:
        raise InvalidInput(Problem("kind", f"must be one of {sorted(KINDS)}"))
    return KINDS[name]


def check_params(project: Project, kind: str, params: Any) -> dict[str, Any]:
    """The params a job of `kind` will be stored with and run with; 400s name the field."""
    checker = kind_get(kind).check
    if not isinstance(params, dict):
        raise InvalidInput(Problem("params", "must be a JSON object"))
    storable.check_json(params)  # stored as given when a checker passes values through
    return checker(project, params)
