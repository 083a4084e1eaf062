"""Guards against over-optimising a learned reward: ensembles, clipping, an independent judge.

A reward model trained on a few hundred pairs is a proxy: optimised hard enough, the policy
finds what it scores highly that people do not want (Gao et al. 2023: the proxy keeps rising
while a gold judge peaks and falls). The guards here, each recorded with the run:
- `EnsembleReward`: one TRL reward function over K reward models, reduced by the worst case
  ("min") or mean - k * std ("mean_minus_std") (Coste et al. 2024): a completion scores well
  only if every member (or the members' consensus) agrees. TRL sums several `reward_funcs`,
  it has no minimum, so the ensemble must be one callable. Optional clipping into a range.
- `independent_judge`: the judge for evaluation and for the detector, never the reward the
  policy was optimised against (refused by name).
- `divergence`: the decision rule of the divergence detector (`training.detector`): the
  optimised reward kept rising over a window of evaluations while the judge did not.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.config import REWARD_AGGREGATES
from training.data import Prompt
from training.models import ModelRef


class GuardError(ValueError):
    """A guard was set up so that it would not guard (the message names the field)."""


def aggregate_scores(member_scores: Sequence[Sequence[float]], how: str, k: float) -> list[float]:
    """One reward per completion from K members' scores (K lists of B scores).

    min: min_i r_i;  mean: mean_i r_i;  mean_minus_std: mean_i r_i - k * std_i r_i (population
    std). Example: members [[1, 4], [3, 0]] -> min [1, 0], mean [2, 2], mean_minus_std (k=1)
    [1, 0].
    """
    if how not in REWARD_AGGREGATES:
        raise GuardError(f"reward_aggregate: must be one of {', '.join(REWARD_AGGREGATES)}")
    out = []
    for column in zip(*member_scores, strict=True):
        mean = sum(column) / len(column)
        if how == "min":
            out.append(min(column))
        elif how == "mean":
            out.append(mean)
        else:
            std = math.sqrt(sum((x - mean) ** 2 for x in column) / len(column))
            out.append(mean - k * std)
    return out


def clip(scores: Sequence[float], clip_range: tuple[float, float] | None) -> list[float]:
    """Scores clipped into [low, high] (unchanged with None)."""
    if clip_range is None:
        return list(scores)
    low, high = clip_range
    return [min(high, max(low, s)) for s in scores]


ScoreFn = Callable[[list[Prompt], list[Any]], list[float]]


ENSEMBLE_MEMBER = "member-{}"  # the members' folders in an ensemble's (training/ensemble.py)


def ensemble_members(path: Any) -> list[str]:
    """The member directories of an ensemble's folder (`train_reward_ensemble`'s `out_dir`:
    `member-0`, `member-1`, ... beside the run's own config.json); [] for anything else."""
    if not isinstance(path, str | os.PathLike):
        return []
    members = []
    while Path(path, ENSEMBLE_MEMBER.format(len(members)), "config.json").is_file():
        members.append(str(Path(path, ENSEMBLE_MEMBER.format(len(members)))))
    return members


def reward_members(reward_model: Any) -> list[Any]:
    """The members of a reward given as one model (path or callable), an ensemble's folder,
    or a list of them."""
    if isinstance(reward_model, list | tuple):
        return [m for model in reward_model for m in reward_members(model)]
    return ensemble_members(reward_model) or [reward_model]


def reward_scorer(path: Any) -> Any:
    """Something with `score_completions(prompts, completions)` for a reward model's folder:
    the model, or an ensemble's minimum over its members (its worst case, as a judge)."""
    from training.reward import RewardScorer

    members = ensemble_members(path)
    return EnsembleReward(members, aggregate="min") if members else RewardScorer(path)


def _member_fn(member: Any, batch_size: int) -> tuple[ScoreFn, str]:
    """A (prompts, completions) -> scores function and a name for a path, scorer or callable."""
    from training.reward import RewardScorer

    if isinstance(member, RewardScorer):
        return member.score_completions, "reward model"
    if callable(member):
        name = getattr(member, "__name__", type(member).__name__)
        return (lambda p, c: [float(x) for x in member(prompts=p, completions=c)]), name
    return RewardScorer(member, batch_size=batch_size).score_completions, str(member)


@dataclass
class EnsembleReward:
    """A TRL reward function: K reward models (paths, scorers or reward callables) as one.

    TRL calls it with the prompts and decoded completions of a generation batch and logs its
    mean as `rewards/<__name__>/mean`. `stats` counts what the guard did over the run.
    """

    members: Sequence[Any]
    aggregate: str = "min"
    std_k: float = 1.0
    clip_range: tuple[float, float] | None = None
    batch_size: int = 32
    stats: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.members:
            raise GuardError("reward_model: at least one reward model is needed")
        if self.aggregate not in REWARD_AGGREGATES:
            raise GuardError(f"reward_aggregate: must be one of {', '.join(REWARD_AGGREGATES)}")
        self.members = reward_members(list(self.members))
        fns = [_member_fn(m, self.batch_size) for m in self.members]
        self._fns = [f for f, _ in fns]
        self.names = [n for _, n in fns]
        self.__name__ = "reward_model" if len(fns) == 1 else f"reward_ensemble_{self.aggregate}"
        self.stats = {"scored": 0, "clipped": 0, "member_std_sum": 0.0}

    def score_completions(self, prompts: list[Any], completions: list[Any]) -> list[float]:
        """`score` under the name `RewardScorer` gives it (evaluation takes either)."""
        return self.score(prompts, completions)

    def member_scores(self, prompts: list[Any], completions: list[Any]) -> list[list[float]]:
        return [fn(list(prompts), list(completions)) for fn in self._fns]

    def score(self, prompts: list[Any], completions: list[Any]) -> list[float]:
        """The reward of each completion, without counting it in `stats` (for evaluation)."""
        return self._reduce(prompts, completions)[1]

    def _reduce(self, prompts: list[Any], completions: list[Any]) -> tuple[list[float], ...]:
        scores = self.member_scores(prompts, completions)
        if len(scores) == 1:
            raw, stds = scores[0], [0.0] * len(scores[0])
        else:
            raw = aggregate_scores(scores, self.aggregate, self.std_k)
            # mean - (mean - 1 * std) is the members' std on each completion.
            means = aggregate_scores(scores, "mean", 0.0)
            lows = aggregate_scores(scores, "mean_minus_std", 1.0)
            stds = [m - lo for m, lo in zip(means, lows, strict=True)]
        return raw, clip(raw, self.clip_range), stds

    def __call__(self, prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        raw, out, stds = self._reduce(prompts, completions)
        self.stats["member_std_sum"] += sum(stds)
        self.stats["scored"] += len(out)
        self.stats["clipped"] += sum(a != b for a, b in zip(raw, out, strict=True))
        return out

    def describe(self) -> dict[str, Any]:
        """What the run was optimised against, for its metrics (and the job page)."""
        n = self.stats["scored"] or 1
        return {
            "members": list(self.names),
            "aggregate": self.aggregate if len(self.names) > 1 else "single",
            "std_k": self.std_k if self.aggregate == "mean_minus_std" else None,
            "clip_range": list(self.clip_range) if self.clip_range else None,
            "clipped_share": self.stats["clipped"] / n,
            "mean_member_std": self.stats["member_std_sum"] / n if len(self.names) > 1 else None,
        }


def _same_model(a: Any, b: Any) -> bool:
    if isinstance(a, str | os.PathLike) and isinstance(b, str | os.PathLike):
        return Path(a).resolve() == Path(b).resolve()
    return a is b


@dataclass
class IndependentJudge:
    """A judge the policy was not optimised against: score(prompts, completions) -> floats."""

    name: str
    score: ScoreFn
    members: list[Any]


def independent_judge(
    training_reward: Sequence[Any],
    judge: Any | Sequence[Any] | None = None,
    pool: Sequence[ModelRef] = (),
    aggregate: str = "min",
) -> IndependentJudge:
    """The judge for a run optimised against `training_reward` (its reward model paths or
    callables), refusing any judge that is, or contains, one of them.

    `judge`: a reward model path, a callable (prompt, completion) -> score (the lexicon, a
    gold rule), or several reward model paths (judged by their `aggregate`: the ensemble
    minimum by default). Without one, the members of `pool` not used in training (another
    seed, a model from a held-out split) are the judge. Raises GuardError when nothing
    independent is left, rather than fall back to the training reward.
    """
    used = reward_members(list(training_reward))
    if judge is None:
        chosen = [m for m in reward_members(list(pool)) if not any(_same_model(m, u) for u in used)]
        if not chosen:
            raise GuardError(
                "judge: no reward model independent of the training reward; train another"
                " seed or a model on a held-out split, or name a judge"
            )
    elif isinstance(judge, list | tuple):
        chosen = reward_members(list(judge))
    else:
        chosen = reward_members(judge)
    for member in chosen:
        if any(_same_model(member, u) for u in used):
            raise GuardError(
                f"judge: {member} is the reward the policy is optimised against; a judge must"
                " be independent of it"
            )
    if len(chosen) == 1 and callable(chosen[0]) and not hasattr(chosen[0], "score_completions"):
        fn = chosen[0]
        name = getattr(fn, "__name__", type(fn).__name__)

        def score(prompts: list[Prompt], completions: list[Any]) -> list[float]:
            return [float(fn(p, c)) for p, c in zip(prompts, completions, strict=True)]

        return IndependentJudge(name=name, score=score, members=chosen)
    ensemble = EnsembleReward(chosen, aggregate=aggregate)
    name = ensemble.names[0] if len(chosen) == 1 else f"{aggregate} of {len(chosen)} models"
    return IndependentJudge(name=name, score=ensemble.score, members=[str(m) for m in chosen])


def _slope(values: Sequence[float]) -> float:
    """Least-squares slope of values against 0, 1, 2, ... (0 for fewer than 2 points)."""
    n = len(values)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(values) / n
    num = sum((i - mx) * (v - my) for i, v in enumerate(values))
    return num / sum((i - mx) ** 2 for i in range(n))


@dataclass(frozen=True)
class Decision:
    stop: bool
    reason: str = ""


def divergence(
    proxy: Sequence[float],
    judge: Sequence[float],
    window: int = 3,
    min_rise: float = 0.0,
    tolerance: float = 0.0,
) -> Decision:
    """Stop when, over the last `window` evaluations, the optimised reward kept rising while
    the independent judge did not.

    "Kept rising": its least-squares slope over the window is > `min_rise` per evaluation and
    its last value is above its first. "Did not": the judge's slope is <= `tolerance`. Fewer
    than `window` evaluations: never stop. Example (window 3): proxy [0, 1, 2], judge [0, 0, -1]
    -> stop; proxy [0, 1, 2], judge [0, 1, 2] -> go on.
    """
    if len(proxy) != len(judge):
        raise ValueError(f"curves differ in length: {len(proxy)} and {len(judge)}")
    if window < 2 or len(proxy) < window:
        return Decision(False)
    p, j = list(proxy[-window:]), list(judge[-window:])
    p_slope, j_slope = _slope(p), _slope(j)
    if p_slope > min_rise and p[-1] > p[0] and j_slope <= tolerance:
        trend = "fell" if j_slope < 0 else "did not rise"
        return Decision(
            True,
            f"over the last {window} evaluations the training reward rose"
            f" {p[0]:.3g} -> {p[-1]:.3g} (slope {p_slope:.3g}) while the independent judge"
            f" {trend} {j[0]:.3g} -> {j[-1]:.3g} (slope {j_slope:.3g})",
        )
    return Decision(False)


__all__ = [
    "Decision",
    "EnsembleReward",
    "GuardError",
    "IndependentJudge",
    "aggregate_scores",
    "clip",
    "divergence",
    "ensemble_members",
    "independent_judge",
    "reward_members",
    "reward_scorer",
]
