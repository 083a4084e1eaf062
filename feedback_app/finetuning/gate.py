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
  evaluation set (`yardstick_accuracy`), not on active selection's hard prompts, together with
  the pairs of gold tasks' expected orders where there are any (`gold_accuracy`): the check
  reads the accuracy over both sets of pairs, each kept apart in the inputs and shown.

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
    reward_accuracy_source: str = "heldout"  # "yardstick": random evaluation-set pairs,
    # "yardstick+gold": those and gold tasks' pairs, pooled (each kept below)
    reward_accuracy_random: float | None = None  # on the random evaluation-set pairs
    reward_pairs_random: int | None = None
    reward_accuracy_gold: float | None = None  # on the gold tasks' pairs
    reward_pairs_gold: int | None = None
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


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _reward_accuracy(
    random: float | None, n_random: int | None, gold: float | None, n_gold: int | None
) -> tuple[float | None, str]:
    """The judge's accuracy over the random pairs and the gold pairs together (each set
    weighted by its pairs), and its source; (None, "") when neither was measured.

    >>> _reward_accuracy(0.8, 200, 0.5, 50)
    (0.74, 'yardstick+gold')
    >>> _reward_accuracy(None, None, 0.5, 50), _reward_accuracy(0.7, 10, None, None)
    ((0.5, 'gold'), (0.7, 'yardstick'))
    """
    if gold is None or n_gold is None:
        return random, "yardstick" if random is not None else ""
    if random is None or n_random is None:
        return gold, "gold"
    pooled = (random * n_random + gold * n_gold) / (n_random + n_gold)
    return round(pooled, 12), "yardstick+gold"


def gate_inputs(policy_metrics: dict[str, Any], reward_metrics: dict[str, Any]) -> GateInputs:
    """The gate's inputs from the metrics `evaluate` stored on the policy and the reward model's
    held-out accuracy (`train_reward`); anything missing or not a finite number is None."""
    yardstick = _number(reward_metrics.get("yardstick_accuracy"))
    n_yard = _count(reward_metrics.get("yardstick_pairs"))
    gold = _number(reward_metrics.get("gold_accuracy"))
    n_gold = _count(reward_metrics.get("gold_pairs"))
    judged_by = policy_metrics.get("judge_id")
    accuracy, source = _reward_accuracy(yardstick, n_yard, gold, n_gold)
    if accuracy is None:
        accuracy, source = _number(reward_metrics.get("heldout_accuracy")), "heldout"
    return GateInputs(
        win_rate=_number(policy_metrics.get("win_rate")),
        win_rate_low=_number(policy_metrics.get("win_rate_low")),
        kl=_number(policy_metrics.get("kl_to_parent")),
        reward_accuracy=accuracy,
        kl_to_base=_number(policy_metrics.get("kl_to_base")),
        lc_win_rate=_number(policy_metrics.get("lc_win_rate")),
        length_ratio=_number(policy_metrics.get("length_ratio")),
        reward_accuracy_source=source,
        reward_accuracy_random=yardstick,
        reward_pairs_random=n_yard,
        reward_accuracy_gold=gold,
        reward_pairs_gold=n_gold,
        judge_independent=(
            judged_by is None or judged_by != policy_metrics.get("optimised_against")
        ),
    )


def _reward_parts(inputs: GateInputs) -> str:
    """The parts of the pooled accuracy when gold pairs took part, else an empty string."""
    if inputs.reward_accuracy_source != "yardstick+gold":
        return ""
    return (
        f" (random {inputs.reward_accuracy_random:.3f} on {inputs.reward_pairs_random} pairs, "
        f"gold {inputs.reward_accuracy_gold:.3f} on {inputs.reward_pairs_gold})"
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
            + _reward_parts(inputs)
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
