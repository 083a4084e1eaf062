"""The autopilot's promotion gate: a pure decision on plain numbers (no Django, no ORM).

A new policy is promoted only if all three checks pass:

- win rate against its parent, by the lower end of its 95 % Wilson interval (training/stats.py),
  at least `min_win_rate_low`: the point estimate alone lets a lucky few samples through;
- KL to the parent (nats a sequence, `evaluate`) at most `max_kl`: it has not wandered off;
- held-out accuracy of the reward model that judged it at least `min_reward_accuracy`: the judge
  itself must be worth trusting, or the win rate means nothing.

- KL to the base (the whole lineage's budget) at most `max_kl_to_base`, beside KL to the parent;
- the length-controlled win rate (training/stats.py) at least `min_lc_win_rate`, and the
  length ratio to the parent within [1 / `max_length_ratio`, `max_length_ratio`]: a win that is
  only length is no win;
- the judge is not the reward the policy was optimised against (online RL): it must judge with
  something the policy never saw. The reward model's accuracy is read on the project's random
  evaluation set (`yardstick_accuracy`), not on active selection's hard prompts.

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
    max_kl_to_base: float = math.inf  # KL(policy || base): the lineage's budget, at most
    min_lc_win_rate: float = 0.0  # the length-controlled win rate, at least
    max_length_ratio: float = math.inf  # policy / parent mean length, within [1/r, r]


@dataclass(frozen=True)
class GateInputs:
    win_rate: float | None
    win_rate_low: float | None
    kl: float | None
    reward_accuracy: float | None
    kl_to_base: float | None = None
    lc_win_rate: float | None = None
    length_ratio: float | None = None
    reward_accuracy_source: str = "heldout"  # "yardstick": random evaluation-set pairs
    judge_independent: bool = True  # False: the policy was optimised against its judge


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
    yardstick = _number(reward_metrics.get("yardstick_accuracy"))
    judged_by = policy_metrics.get("judge_id")
    return GateInputs(
        win_rate=_number(policy_metrics.get("win_rate")),
        win_rate_low=_number(policy_metrics.get("win_rate_low")),
        kl=_number(policy_metrics.get("kl_to_parent")),
        reward_accuracy=(
            yardstick if yardstick is not None else _number(reward_metrics.get("heldout_accuracy"))
        ),
        kl_to_base=_number(policy_metrics.get("kl_to_base")),
        lc_win_rate=_number(policy_metrics.get("lc_win_rate")),
        length_ratio=_number(policy_metrics.get("length_ratio")),
        reward_accuracy_source="yardstick" if yardstick is not None else "heldout",
        judge_independent=(
            judged_by is None or judged_by != policy_metrics.get("optimised_against")
        ),
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
    if inputs.kl_to_base is not None and inputs.kl_to_base > t.max_kl_to_base:
        reasons.append(f"KL to the base {inputs.kl_to_base:.3f} > {t.max_kl_to_base:.3f}")
    if inputs.lc_win_rate is not None and inputs.lc_win_rate < t.min_lc_win_rate:
        reasons.append(
            f"length-controlled win rate {inputs.lc_win_rate:.3f} < {t.min_lc_win_rate:.3f}"
        )
    ratio = inputs.length_ratio
    if ratio is not None and ratio > 0 and max(ratio, 1 / ratio) > t.max_length_ratio:
        reasons.append(
            f"length ratio {ratio:.2f} outside 1/{t.max_length_ratio:g}..{t.max_length_ratio:g}"
        )
    if not inputs.judge_independent:
        reasons.append("judged by the reward the policy was optimised against")
    return GateDecision(passed=not reasons, inputs=inputs, thresholds=t, reasons=reasons)
