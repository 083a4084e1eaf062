"""Shared plumbing for the TRL trainers: run one, time it, collect metrics, save beside it."""

from __future__ import annotations

import time
from typing import Any

from training.progress import Progress, TrainerProgress


def token_count(dataset: Any, columns: tuple[str, ...]) -> int:
    """Tokens in a tokenised TRL dataset (sum of the lengths of the given id columns)."""
    total = 0
    for column in columns:
        if column in dataset.column_names:
            total += sum(len(ids) for ids in dataset[column])
    return total


def run_trainer(trainer: Any, tracker: TrainerProgress) -> dict[str, Any]:
    """Train, then summarise: runtime, progress made and the last logged values."""
    from transformers.trainer_callback import PrinterCallback

    # With disable_tqdm the Trainer prints every log dict to stdout; the library must not print.
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    state = trainer.state
    fraction = state.global_step / state.max_steps if state.max_steps else 1.0
    metrics: dict[str, Any] = {
        "train_seconds": round(seconds, 3),
        "train_loss": float(output.training_loss),
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "epochs_completed": float(state.epoch or 0.0),
        "fraction_done": fraction,
    }
    last = next((h for h in reversed(tracker.history) if "loss" in h), {})
    for key, value in last.items():
        if key not in ("step", "elapsed_s"):
            metrics[f"last/{key}"] = value
    return metrics


def new_tracker(progress: Progress | None) -> TrainerProgress:
    return TrainerProgress(progress=progress)
