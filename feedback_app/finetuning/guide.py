"""The guided loop: which step of a turn comes next, and how to read its results. Pure: plain
numbers in, words out (no Django, no ORM), so every page and the API say the same thing.

A turn is seven steps, in order::

    rank -> snapshot -> reward -> policy -> evaluate -> promote -> generate

It is anchored on the newest pairs snapshot: a reward model and a policy trained on it, that
policy evaluated, then promoted if it is better, then a new round. Without a snapshot the turn
starts by ranking (or by generating the first round).

>>> next_step(LoopState(has_tasks=True, round_open=True, rankings_since_snapshot=0)).step
'rank'
>>> next_step(LoopState(has_tasks=True, round_open=False, rankings_since_snapshot=12)).step
'snapshot'
>>> kl_display(-0.059, 0.03)
'0.00 ± 0.06'
>>> verdict(0.62, 0.41, 0.80)
'not clearly different'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from training.stats import wilson_interval

STEPS = ("rank", "snapshot", "reward", "policy", "evaluate", "promote", "generate")
STEP_LABELS = {
    "rank": "Rank the round",
    "snapshot": "Build a dataset snapshot",
    "reward": "Train a reward model",
    "policy": "Train the policy",
    "evaluate": "Evaluate the policy",
    "promote": "Promote it",
    "generate": "Generate the next round",
}
# The loop page's launcher of each step (None: the step happens on another page).
STEP_KINDS = {
    "rank": None,
    "snapshot": "build_dataset",
    "reward": "train_reward",
    "policy": "train_dpo",
    "evaluate": "evaluate",
    "promote": None,
    "generate": "generate",
}
# The steps each job kind stands for, so a finished job's page can point at what follows it.
KIND_STEPS = {
    "build_dataset": "snapshot",
    "train_reward": "reward",
    "train_dpo": "policy",
    "train_sft": "policy",
    "train_kto": "policy",
    "train_grpo": "policy",
    "train_rloo": "policy",
    "evaluate": "evaluate",
    "promote": "promote",
    "generate": "generate",
    "build_base": "generate",
}

BETTER, UNCLEAR, WORSE = "better", "not clearly different", "worse"


@dataclass(frozen=True)
class LoopState:
    """What the next step depends on, read from the project by `selectors.loop_state`."""

    has_tasks: bool  # any round exists
    round_open: bool  # the newest round still wants rankings
    rankings_since_snapshot: int
    snapshot: int | None = None  # the newest pairs snapshot
    reward_trained: bool = False  # a reward model trained on that snapshot (or a newer one)
    policy: int | None = None  # the newest policy trained on it, if any
    policy_verdict: str | None = None  # its evaluation's verdict; None: not evaluated
    policy_active: bool = False


@dataclass(frozen=True)
class NextStep:
    step: str
    reason: str

    @property
    def label(self) -> str:
        return STEP_LABELS[self.step]

    @property
    def kind(self) -> str | None:
        """The job kind that does it from the loop page, or None (ranking, promoting)."""
        return STEP_KINDS[self.step]


def next_step(state: LoopState) -> NextStep:
    """The one recommended action for the project's state (the loop page shows it first)."""
    s = state
    if not s.has_tasks:
        return NextStep("generate", "There is no round yet: generate the first one.")
    if s.snapshot is None:
        if s.rankings_since_snapshot and not s.round_open:
            return NextStep("snapshot", "The round is ranked: turn its rankings into pairs.")
        if s.round_open or not s.rankings_since_snapshot:
            return NextStep("rank", "The round wants rankings before anything can be trained.")
    if not s.reward_trained:
        return NextStep("reward", "Train a reward model on the newest snapshot: it judges.")
    if s.policy is None:
        return NextStep("policy", "Train the policy on the newest snapshot.")
    if s.policy_verdict is None:
        return NextStep("evaluate", "Compare the new policy with its parent before using it.")
    if s.policy_verdict == BETTER and not s.policy_active:
        return NextStep("promote", "The new policy beat its parent: make it the active one.")
    if s.round_open:
        return NextStep("rank", "The newest round still wants rankings.")
    if s.rankings_since_snapshot:
        return NextStep("snapshot", "New rankings since the last snapshot: build a new one.")
    why = "" if s.policy_verdict == BETTER else " (the new policy did not clearly win: more data)"
    return NextStep("generate", f"The turn is done: generate the next round{why}.")


def step_after(kind: str) -> str | None:
    """The step that follows the one a job of `kind` did, in the turn's order."""
    step = KIND_STEPS.get(kind)
    if step is None:
        return None
    return STEPS[(STEPS.index(step) + 1) % len(STEPS)]


def verdict(win_rate: float | None, low: float | None, high: float | None) -> str | None:
    """Better if the whole 95 % interval of the win rate is above one half, worse if below,
    else not clearly different; None without an evaluation."""
    if win_rate is None or low is None or high is None:
        return None
    if low > 0.5:
        return BETTER
    if high < 0.5:
        return WORSE
    return UNCLEAR


def promote_warning(metrics: dict) -> str | None:
    """Why promoting a version needs a second thought (it lost, or its interval includes one
    half), or None. Versions never evaluated (reward models, a base) need none."""
    said = verdict(
        metrics.get("win_rate"), metrics.get("win_rate_low"), metrics.get("win_rate_high")
    )
    rate = metrics.get("win_rate")
    if said == WORSE:
        return f"it lost to its parent (win rate {rate:.2f}, the whole 95 % interval below 0.5)"
    if said == UNCLEAR:
        low, high = metrics["win_rate_low"], metrics["win_rate_high"]
        return (
            f"it is not clearly better than its parent (win rate {rate:.2f}, 95 % interval "
            f"{low:.2f}–{high:.2f} includes 0.5)"
        )
    if said is None and rate is not None and rate <= 0.5:
        return f"it did not beat its parent (win rate {rate:.2f})"
    return None


def kl_display(kl: float | None, stderr: float | None = None) -> str:
    """A KL estimate as "estimate ± noise" (two standard errors: about a 95 % band), never a
    bare negative: the true KL is at least 0, a negative estimate is noise around a small one.

    >>> kl_display(0.1234, 0.01)
    '0.12 ± 0.02'
    >>> kl_display(-0.059)
    '≈ 0 (estimate −0.06: noise)'
    >>> kl_display(None)
    '–'
    """
    if kl is None or not math.isfinite(kl):
        return "–"
    if stderr is not None and math.isfinite(stderr):
        return f"{max(kl, 0.0):.2f} ± {2 * stderr:.2f}"
    if kl < 0:
        return f"≈ 0 (estimate −{-kl:.2f}: noise)"
    return f"{kl:.2f}"


@dataclass(frozen=True)
class GateOutlook:
    comparisons: int
    best_low: float  # the lower bound if the policy won every comparison
    needed_win_rate: float | None  # the least win rate that passes at this n; None: none does

    @property
    def can_pass(self) -> bool:
        return self.needed_win_rate is not None


def gate_outlook(comparisons: int, min_win_rate_low: float) -> GateOutlook:
    """Can the gate's win-rate check pass with `comparisons` samples, and at what win rate?

    With n comparisons the 95 % interval's lower bound is at most wilson_low(n, n): below the
    threshold, no policy can pass, whatever it does.

    >>> gate_outlook(4, 0.5).can_pass, round(gate_outlook(4, 0.5).best_low, 3)
    (True, 0.51)
    >>> gate_outlook(3, 0.5).can_pass
    False
    >>> gate_outlook(16, 0.5).needed_win_rate
    0.75
    """
    n = max(int(comparisons), 0)
    best = wilson_interval(n, n)[0] if n else 0.0
    needed = None
    for halves in range(0, 2 * n + 1):  # a tie is half a win
        if wilson_interval(halves / 2, n)[0] >= min_win_rate_low:
            needed = halves / (2 * n)
            break
    return GateOutlook(n, best, needed)


def gate_outlook_text(outlook: GateOutlook, min_win_rate_low: float) -> str:
    """One sentence for the autopilot's card, said before a run."""
    n = outlook.comparisons
    if not outlook.can_pass:
        return (
            f"The gate cannot pass at this sample size: with {n} comparisons the 95 % interval's "
            f"lower end is at most {outlook.best_low:.2f} (all wins), below the threshold "
            f"{min_win_rate_low:.2f}. Evaluate on more prompts or lower the threshold."
        )
    return (
        f"With {n} comparisons the gate's win-rate check passes only at a win rate of "
        f"{outlook.needed_win_rate:.2f} or more."
    )
