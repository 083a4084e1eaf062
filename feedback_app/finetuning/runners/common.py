"""What every runner shares: reading a snapshot's rows and the project's prompts, the output
folder of a job, and the check that the training library stopped because of a cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from feedback_app.annotation.models import Prompt
from feedback_app.core.artifacts import artifact_publish, local_folder
from feedback_app.core.models import DatasetSnapshot, Job
from training.data import read_jsonl

from ..reporting import JobCancelled, JobReporter


def prompt_input(p: Prompt) -> str | list[dict]:
    return p.messages if p.is_chat else p.text


def read_rows(snapshot: DatasetSnapshot, split: str) -> list[dict]:
    path = local_folder(snapshot.path) / f"{split}.jsonl"
    return read_jsonl(path) if path.exists() and path.stat().st_size else []


def trainable_pairs(rows: list[dict], reporter: JobReporter) -> list[dict]:
    """The pairs TRL accepts: a generated candidate can be empty (the model's first token was
    its end) or the same text as another, and one such pair fails the whole training run."""
    from training.data import PairError, pair_format

    kept = []
    for i, row in enumerate(rows):
        try:
            pair_format(row, i)
        except PairError:
            continue
        kept.append(row)
    if len(kept) < len(rows):
        reporter.log(f"{len(rows) - len(kept)} pairs with an empty or identical side left out")
    return kept


def out_dir(job: Job, name: str) -> Path:
    path = Path(settings.MODEL_DIR) / str(job.project_id) / f"{name}-job{job.pk}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def publish(job: Job, out: str | Path) -> str:
    """The written model folder stored where models live; the reference to register."""
    return artifact_publish(out, f"models/{job.project_id}/{Path(out).name}")


def stopped(result: Any) -> None:
    if getattr(result, "stopped", False) or (isinstance(result, dict) and result.get("stopped")):
        raise JobCancelled()


def project_prompts(job: Job, limit: int | None) -> list[str | list[dict]]:
    """The prompts an evaluation samples: the project's fixed evaluation set (never trained on,
    never picked by active selection: finetuning/evalset.py); a project too small to have one
    falls back to its newest prompts."""
    from ..evalset import eval_set_prompts

    chosen = eval_set_prompts(project=job.project)
    if not chosen:
        chosen = list(Prompt.objects.filter(project=job.project).order_by("-id"))
    prompts = [prompt_input(x) for x in chosen]
    return prompts[:limit] if limit else prompts


def data_used(snapshot: DatasetSnapshot, trained_rows: int) -> dict[str, Any]:
    """What a training step learnt from, kept with the version it made: the snapshot (every
    round's rankings up to `rankings_through`: rounds compound) and the rounds they came from."""
    from feedback_app.annotation.models import Ranking

    rounds = sorted(
        set(
            Ranking.objects.filter(
                task__project_id=snapshot.project_id, id__lte=snapshot.rankings_through
            ).values_list("task__round", flat=True)
        )
    )
    used = {
        "data_snapshot": snapshot.pk,
        "data_rankings": snapshot.counts.get("rankings"),
        "data_rows": trained_rows,
        "data_rounds": rounds,
    }
    if "rounds" in snapshot.counts:  # snapshots built before it have no per-round counts
        used["data_pairs_by_round"] = snapshot.counts["rounds"]
    recency = (snapshot.policy or {}).get("recency")
    if recency:  # the weights and the rows each round got (preferences/services.py)
        used["data_recency"] = {**recency, "rows": snapshot.counts.get("recency_rows")}
    return used
