"""What a stage trained against a reward model needs beyond `run_stage`'s train-register-evaluate:
its further rows (online DPO's human pairs), the independent judge (for the divergence detector
and the evaluation, never the training reward: finetuning/judges.py), and the detector's verdict,
which ends the job as a result ("stopped by the divergence detector: <reason>"), not a cancel.
"""

from __future__ import annotations

from typing import Any

from feedback_app.core.artifacts import local_model
from feedback_app.core.models import DatasetSnapshot, Job, ModelVersion
from training.stages import PAIRS, PROMPTS, Stage

from ..reporting import JobReporter
from .common import read_rows, trainable_pairs

DETECTOR = "divergence detector"  # `metrics["stopped_by"]` of a run its detector stopped


def prompt_rows(rows: list[dict]) -> list[dict]:
    """Each distinct prompt of a snapshot's rows once, in order: a sampling stage's input."""
    import json

    seen: set[str] = set()
    out = []
    for row in rows:
        prompt = row["prompt"] if "prompt" in row else row["messages"][:-1]
        key = json.dumps(prompt, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append({"prompt": prompt})
    return out


def stage_inputs(
    stage: Stage, snapshot: DatasetSnapshot, reporter: JobReporter, split: str = "train"
) -> list[list[dict]]:
    """The rows a stage's train function takes, one list per kind in `stage.inputs`: the
    snapshot's prompts for PROMPTS, its trainable pairs for PAIRS, its rows otherwise."""
    rows = read_rows(snapshot, split)
    out = []
    for kind in stage.inputs:
        if kind == PROMPTS:
            out.append(prompt_rows(rows))
        elif kind == PAIRS and stage.rows != PAIRS:
            out.append(trainable_pairs(rows, reporter))  # pairs beside prompts: online DPO
        else:
            out.append(rows)
    return out


def judge_of(job: Job) -> ModelVersion | None:
    """The independent judge the launch check chose (params["judge"]), if any."""
    pk = job.params.get("judge")
    return ModelVersion.objects.filter(pk=pk).first() if pk else None


def train_kwargs(stage: Stage, job: Job, snapshot: DatasetSnapshot, config: Any) -> dict:
    """Keyword arguments for the divergence detector of an online RL run: the judge's weights
    and, as its prompts, the snapshot's held-out ones (training prompts when it has none)."""
    if not getattr(config, "judge_every", 0):
        return {}
    judge = judge_of(job)
    if judge is None:  # params.check_stage refuses this; a stored job edited by hand is not
        raise ValueError("judge: the divergence detector needs an independent judge")
    held_out = prompt_rows(read_rows(snapshot, "test"))
    return {"judge": local_model(judge.weights), "judge_rows": held_out or None}


def detector_stop(result: Any) -> str | None:
    """The divergence detector's reason if it stopped the run (None: it did not)."""
    metrics = getattr(result, "metrics", None) or {}
    if metrics.get("stopped_by") != DETECTOR:
        return None
    return (metrics.get("divergence") or {}).get("reason") or "no reason recorded"


def stop_note(reason: str) -> str:
    return f"stopped by the divergence detector: {reason}"
