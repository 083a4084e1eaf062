"""The job kinds, each declared once: everything that differs between kinds is read from here.

A kind is its name (the value stored in `Job.kind`), a label, the checker that turns accepted
params into stored params, the runner a worker calls, the queue it is sent to, the loop page's
launch form (None: launched from elsewhere, like promote), and whether it loads torch (its
threads are then limited to TORCH_THREADS). `Job.Kind` in core stays the database column's
enum; tests/finetuning/test_kinds.py checks that it and this registry agree, and that every
queue named here is configured.

A training stage's kind is generated from its row in the stage table (training/stages.py):
adding a stage is one row there and one train function. Adding another kind (docs/architecture.md,
"Job kinds"): its checker in `params.py`, its runner in `runners/`, a form in `forms.py` if the
loop page launches it, one entry below, and the value in `Job.Kind` with its migration.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core.models import Project
from training.stages import Stage, stage_list

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


def _stage_kind(stage: Stage) -> JobKind:
    """A training stage's job kind, every column read from its row (training/stages.py)."""
    return JobKind(
        stage.kind, stage.title, functools.partial(checkers.check_stage, stage),
        runners.stage_runner(stage), QUEUE_TRAINING, forms.stage_form(stage), torch=True,
    )  # fmt: skip


# The kinds that are not training stages; the stages go between build_dataset and evaluate.
_BEFORE_STAGES = (
    JobKind(
        "generate",
        "Generate a round",
        checkers.check_generate,
        runners.run_generate,
        QUEUE_GENERATION,
        forms.GenerateForm,
        torch=True,
    ),
    JobKind(
        "build_dataset",
        "Build a dataset snapshot",
        checkers.check_build_dataset,
        runners.run_build_dataset,
        QUEUE_DEFAULT,
        forms.BuildDatasetForm,
    ),
)
_AFTER_STAGES = (
    JobKind(
        "evaluate", "Evaluate a policy", checkers.check_evaluate, runners.run_evaluate,
        QUEUE_TRAINING, forms.EvaluateForm, torch=True,
    ),
    JobKind(
        "promote", "Promote a model version", checkers.check_promote, runners.run_promote,
        QUEUE_DEFAULT,
    ),
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
    # Launched by its upload only (services.archive_import_launch); its checker refuses the rest.
    JobKind(
        "import_archive", "Import a project archive", checkers.check_import_archive,
        runners.run_import_archive, QUEUE_DEFAULT,
    ),
    # No launch form: the members page's judge list launches it (and the API, as any kind).
    JobKind(
        "judge_round", "Judge a round", checkers.check_judge_round, runners.run_judge_round,
        QUEUE_GENERATION, torch=True,
    ),
)  # fmt: skip


def kinds_all() -> dict[str, JobKind]:
    """Every kind in order, the training stages as the stage table has them now."""
    stages = tuple(_stage_kind(stage) for stage in stage_list())
    return {kind.name: kind for kind in (*_BEFORE_STAGES, *stages, *_AFTER_STAGES)}


class _View(Mapping[str, Any]):
    """A read-only dict derived from `kinds_all()` whenever it is read: the stage table may
    grow while the process runs (a test's stage), and what reads the registry sees it."""

    def __init__(self, column: Callable[[JobKind], Any], keep: Callable[[JobKind], bool]):
        self._column, self._keep = column, keep

    def _data(self) -> dict[str, Any]:
        return {n: self._column(k) for n, k in kinds_all().items() if self._keep(k)}

    def __getitem__(self, name: str) -> Any:
        return self._data()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())


# The registry, and the views of it for the callers that need one column.
KINDS: Mapping[str, JobKind] = _View(lambda kind: kind, lambda kind: True)
RUNNERS: Mapping[str, Runner] = _View(lambda kind: kind.run, lambda kind: True)
FORMS: Mapping[str, type[forms.LaunchForm]] = _View(
    lambda kind: kind.form, lambda kind: kind.form is not None
)


class _TorchKinds(Set[str]):
    """The kinds whose runner loads torch (their threads are limited to TORCH_THREADS)."""

    def _names(self) -> frozenset[str]:
        return frozenset(name for name, kind in kinds_all().items() if kind.torch)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


TORCH_KINDS: Set[str] = _TorchKinds()


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
