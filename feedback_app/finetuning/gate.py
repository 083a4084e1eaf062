"""The autopilot's promotion gate: a pure decision on plain numbers (no Django, no ORM).

A new policy is promoted only if all three checks pass:

- win rate against its parent, by the lower end of its 95 % Wilson interval (training/stats.py),
  at least `min_win_rate_low`: the point estimate alone lets a lucky few samples through;
- KL to the parent (nats a sequence, `evaluate`) at most `max_kl`: it has not wandered off;
- held-out accuracy of the reward model that judged it at least `min_reward_accuracy`: the judge
  itself must be worth trusting, or the win rate means nothing.

A missing input fails its check with a reason (a KL that could not be computed is not small).
The decision keeps its inputs, thresholds and reasons, so the record says why, not just what.

>>> d = gate_decide(GateInputs(0.8, 0.62, 0.4, 0.9), GateThresholds(0.5, 1.0, 0.6))
>>> d.passed, d.reasons
(True, [])
>>> gate_decide(GateInputs(0.8, 0.42, 3.0, 0.9), GateThresholds(0.5, 1.0, 0.6)).reasons
['win rate lower bound 0.420 < 0.500', 'KL to parent 3.000 > 1.000']
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateThresholds:
    min_win_rate_low: float  # lower end of the win rate's 95 % interval, at least
    max_kl: float  # KL(policy || parent), nats a sequence, at most
    min_reward_accuracy: float  # the judge's held-out pair accuracy, at least


@dataclass(frozen=True)
class GateInputs:
    win_rate: float | None
    win_rate_low: float | None
    kl: float | None
    reward_accuracy: float | None


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    inputs: GateInputs
    thresholds: GateThresholds
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """One line for a page or a log: "passed", or every failed check."""
        return "passed" if self.passed else "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        """The record stored with the run (JSON-ready)."""
        return {
            "passed": self.passed,
            "reason": self.reason,
            "reasons": list(self.reasons),
            "inputs": asdict(self.inputs),
            "thresholds": asdict(self.thresholds),
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def gate_inputs(policy_metrics: dict[str, Any], reward_metrics: dict[str, Any]) -> GateInputs:
    """The gate's inputs from the metrics `evaluate` stored on the policy and the reward model's
    held-out accuracy (`train_reward`); anything missing or not a finite number is None."""
    return GateInputs(
        win_rate=_number(policy_metrics.get("win_rate")),
        win_rate_low=_number(policy_metrics.get("win_rate_low")),
        kl=_number(policy_metrics.get("kl_to_parent")),
        reward_accuracy=_number(reward_metrics.get("heldout_accuracy")),
    )


def gate_decide(inputs: GateInputs, thresholds: GateThresholds) -> GateDecision:
    """Pass only if every check passes; each failed or unknown check gives one reason."""
    t = thresholds
    reasons: list[str] = []
    if inputs.win_rate_low is None:
        reasons.append("no win rate interval (was the policy evaluated?)")
    elif inputs.win_rate_low < t.min_win_rate_low:
        reasons.append(f"win rate lower bound {inputs.win_rate_low:.3f} < {t.min_win_rate_low:.3f}")
    if inputs.kl is None:
        reasons.append("KL to parent unknown (different tokenizers, or not evaluated)")
    elif inputs.kl > t.max_kl:
        reasons.append(f"KL to parent {inputs.kl:.3f} > {t.max_kl:.3f}")
    if inputs.reward_accuracy is None:
        reasons.append("no held-out accuracy of the reward model (empty test split?)")
    elif inputs.reward_accuracy < t.min_reward_accuracy:
        reasons.append(
            f"reward model accuracy {inputs.reward_accuracy:.3f} < {t.min_reward_accuracy:.3f}"
        )
    return GateDecision(passed=not reasons, inputs=inputs, thresholds=t, reasons=reasons)
