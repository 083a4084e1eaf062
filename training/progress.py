"""Progress reporting: one callback type for every long function, and its TRL adapter.

A `Progress` callback receives (step, total, metrics) and may return True to ask the running
function to stop at the next safe point (after the current optimiser step or batch). Functions
that stop early still return a usable result with `stopped=True`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Progress = Callable[[int, int, dict], "bool | None"]


def report(progress: Progress | None, step: int, total: int, metrics: dict[str, Any]) -> bool:
    """Call `progress` if given; True means the caller asked to stop."""
    if progress is None:
        return False
    return bool(progress(step, total, metrics))


def clean_metrics(logs: dict[str, Any]) -> dict[str, float]:
    """Keep finite numbers only: NaN or inf would make metrics.json invalid JSON."""
    out: dict[str, float] = {}
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def _trainer_callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


@dataclass
class TrainerProgress:
    """Adapter from a transformers `TrainerCallback` to a `Progress` callback.

    Records every logged metric dict (the metric history saved beside the checkpoint), calls
    `progress` after each optimiser step with the latest logged metrics (that step's, when it
    logs), and sets
    `control.should_training_stop` when it returns True.
    """

    progress: Progress | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: bool = False
    started: float = field(default_factory=time.perf_counter)
    _latest: dict[str, float] = field(default_factory=dict)

    def as_callback(self) -> Any:
        outer = self

        class _Callback(_trainer_callback_base()):  # type: ignore[misc]
            # The Trainer calls on_step_end before it logs that step: when a log is due, the
            # report waits for it, so that `progress` sees the metrics of the step it is told.
            _due: Any = None

            def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
                metrics = clean_metrics(logs or {})
                if metrics:
                    metrics["step"] = float(state.global_step)
                    metrics["elapsed_s"] = round(time.perf_counter() - outer.started, 3)
                    outer.history.append(metrics)
                    outer._latest = metrics
                if self._due == state.global_step:
                    self._due = None
                    self._report(state, control)

            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
                if control.should_log:
                    self._due = state.global_step
                else:
                    self._report(state, control)

            def _report(self, state, control) -> None:  # noqa: ANN001
                if report(outer.progress, state.global_step, state.max_steps, dict(outer._latest)):
                    outer.stopped = True
                    control.should_training_stop = True

        return _Callback()


class TqdmProgress:
    """A `Progress` callback drawing a tqdm bar on stderr (used by the CLI only)."""

    def __init__(self, desc: str) -> None:
        from tqdm import tqdm

        # disable=False overrides the TQDM_DISABLE default the library sets for workers.
        self.bar = tqdm(desc=desc, total=None, unit="step", disable=False, dynamic_ncols=True)

    def __call__(self, step: int, total: int, metrics: dict) -> bool:
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.n = step
        shown = {k: v for k, v in metrics.items() if k in _SHOWN}
        if shown:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
        self.bar.refresh()
        return False

    def close(self) -> None:
        self.bar.close()


_SHOWN = {"loss", "rewards/accuracies", "accuracy", "ppl", "perplexity", "tokens_per_s"}
