"""Agreement between annotators who ranked the same tasks: pairwise, Kendall's tau-b, alpha.

Each figure is built from counts that add up over tasks (`+`), so a worker can keep one total
per task and refresh a project or a round by summing, instead of reading every ranking again.
Each result says how many tasks and judgements it rests on: a figure from three tasks is not
one from three thousand. Exact definitions: docs/quality.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from feedback_app.preferences.quality.judgements import Judgement, by_task, task_votes


@dataclass(frozen=True)
class AgreementCounts:
    """Pairwise agreement as summable counts.

    agreeing: annotator pairs that gave the same verdict on a candidate pair (both a, both b,
    or both tied); compared: annotator pairs that judged a candidate pair at all; tasks and
    judgements: those with at least one such comparison.
    """

    agreeing: int = 0
    compared: int = 0
    tasks: int = 0
    judgements: int = 0

    def __add__(self, other: AgreementCounts) -> AgreementCounts:
        return AgreementCounts(
            self.agreeing + other.agreeing,
            self.compared + other.compared,
            self.tasks + other.tasks,
            self.judgements + other.judgements,
        )

    @property
    def value(self) -> float | None:
        """Share of agreeing annotator pairs; None when no two annotators judged a pair."""
        return self.agreeing / self.compared if self.compared else None


def pairwise_counts(judgements: Iterable[Judgement]) -> AgreementCounts:
    """Per candidate pair with n judges of whom n_v gave verdict v: sum C(n_v, 2) of C(n, 2)."""
    total = AgreementCounts()
    for tv in task_votes(judgements).values():
        agreeing = compared = 0
        for pv in tv.pairs.values():
            compared += math.comb(pv.total, 2)
            agreeing += (
                math.comb(pv.a_better, 2) + math.comb(pv.b_better, 2) + math.comb(pv.ties, 2)
            )
        if compared:
            total += AgreementCounts(agreeing, compared, 1, tv.judgements)
    return total


def pairwise_agreement(judgements: Iterable[Judgement]) -> AgreementCounts:
    """Share of annotator pairs that order a candidate pair the same way (a tie is a verdict)."""
    return pairwise_counts(judgements)


@dataclass(frozen=True)
class TauCounts:
    """Kendall's tau-b between annotators, as a summable sum and count.

    One comparison is two annotators on one task they both ranked (over the candidates both
    ranked); value is the unweighted mean of tau-b over comparisons. undefined: comparisons
    where one side tied every candidate (tau-b is 0/0 there), left out of the mean.
    """

    total: float = 0.0
    comparisons: int = 0
    undefined: int = 0
    tasks: int = 0
    judgements: int = 0

    def __add__(self, other: TauCounts) -> TauCounts:
        return TauCounts(
            self.total + other.total,
            self.comparisons + other.comparisons,
            self.undefined + other.undefined,
            self.tasks + other.tasks,
            self.judgements + other.judgements,
        )

    @property
    def value(self) -> float | None:
        return self.total / self.comparisons if self.comparisons else None


def tau_b(x: dict[int, int], y: dict[int, int]) -> float | None:
    """Kendall's tau-b of two rankings over the candidates both ranked; None when undefined.

    tau_b = (P - Q) / sqrt((P + Q + T_x) (P + Q + T_y)): P concordant pairs, Q discordant, T_x
    pairs tied in x only, T_y tied in y only (pairs tied in both count in neither), as in
    scipy.stats.kendalltau(variant="b").

    >>> tau_b({1: 1, 2: 2, 3: 3}, {1: 3, 2: 2, 3: 1})
    -1.0
    """
    common = sorted(x.keys() & y.keys())
    p = q = tx = ty = 0
    for i, a in enumerate(common):
        for b in common[i + 1 :]:
            dx = x[a] - x[b]
            dy = y[a] - y[b]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif (dx > 0) == (dy > 0):
                p += 1
            else:
                q += 1
    denominator = math.sqrt((p + q + tx) * (p + q + ty))
    return (p - q) / denominator if denominator else None


def tau_counts(judgements: Iterable[Judgement]) -> TauCounts:
    """Tau-b for every pair of annotators on every task both ranked, summed."""
    total = TauCounts()
    for js in by_task(judgements).values():
        s = 0.0
        n = undefined = 0
        for i, first in enumerate(js):
            for second in js[i + 1 :]:
                t = tau_b(dict(first.ranks), dict(second.ranks))
                if t is None:
                    undefined += 1
                else:
                    s += t
                    n += 1
        if n or undefined:
            total += TauCounts(s, n, undefined, 1, len(js))
    return total


def kendall_tau(judgements: Iterable[Judgement]) -> TauCounts:
    """Mean Kendall's tau-b between annotators over (task, annotator pair) comparisons."""
    return tau_counts(judgements)


@dataclass(frozen=True)
class Coincidences:
    """Krippendorff's coincidence matrix of rank values, summable over tasks.

    matrix[c-1, k-1]: the pairable (c, k) values within units (a unit is one candidate of one
    task, its values the ranks annotators gave it), each unit weighted 1 / (m_u - 1) for its
    m_u values; only units with two values or more count. Adding two is exact when they hold
    different tasks.
    """

    matrix: np.ndarray
    units: int = 0
    tasks: int = 0
    judgements: int = 0

    def __add__(self, other: Coincidences) -> Coincidences:
        size = max(len(self.matrix), len(other.matrix))
        m = np.zeros((size, size))
        m[: len(self.matrix), : len(self.matrix)] += self.matrix
        m[: len(other.matrix), : len(other.matrix)] += other.matrix
        return Coincidences(
            m,
            self.units + other.units,
            self.tasks + other.tasks,
            self.judgements + other.judgements,
        )

    @property
    def value(self) -> float | None:
        """Ordinal alpha = 1 - (n - 1) sum o_ck d2_ck / sum n_c n_k d2_ck; None if undefined."""
        o = self.matrix
        n_c = o.sum(axis=1)
        n = n_c.sum()
        if n <= 1:
            return None
        d2 = ordinal_distances(n_c)
        expected = float(n_c @ d2 @ n_c)
        if expected == 0:
            return None  # one rank value only: no variation to agree about
        return 1.0 - (n - 1) * float((o * d2).sum()) / expected


def ordinal_distances(n_c: np.ndarray) -> np.ndarray:
    """d2_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2: Krippendorff's ordinal metric."""
    cum = np.concatenate([[0.0], np.cumsum(n_c)])
    c = np.arange(len(n_c))
    lo = np.minimum.outer(c, c)
    hi = np.maximum.outer(c, c)
    between = cum[hi + 1] - cum[lo]
    return (between - (n_c[:, None] + n_c[None, :]) / 2) ** 2 * (lo != hi)


def coincidences(judgements: Iterable[Judgement]) -> Coincidences:
    """The coincidence matrix of the judgements' rank values (vectorised over units)."""
    unit_of: dict[tuple[int, int], int] = {}
    units: list[int] = []
    values: list[int] = []
    tasks: dict[int, int] = {}
    for j in judgements:
        tasks[j.task_id] = tasks.get(j.task_id, 0) + 1
        for candidate, rank in j.ranks.items():
            units.append(unit_of.setdefault((j.task_id, candidate), len(unit_of)))
            values.append(rank)
    if not values:
        return Coincidences(np.zeros((0, 0)))
    u = np.asarray(units)
    v = np.asarray(values) - 1
    size = int(v.max()) + 1
    counts = np.bincount(u * size + v, minlength=len(unit_of) * size).reshape(-1, size)
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts = counts[pairable].astype(float)
    weighted = counts / (m[pairable] - 1)[:, None]
    matrix = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    task_ids = np.fromiter((t for t, _ in unit_of), dtype=np.int64, count=len(unit_of))
    kept = set(task_ids[pairable].tolist())
    return Coincidences(matrix, int(pairable.sum()), len(kept), sum(tasks[t] for t in kept))


def krippendorff_alpha(judgements: Iterable[Judgement]) -> Coincidences:
    """Krippendorff's alpha (ordinal) over tasks x annotators x candidates; `.value` is alpha."""
    return coincidences(judgements)
