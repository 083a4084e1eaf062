"""How far an AI judge can be trusted: its figures against human gold and against people.

The judge's input is its pairwise comparisons, each asked in both orders (`training.judges`):
a `JudgeComparison` holds the verdict on candidates a < b with a shown first and with b shown
first; its verdict is that when both agree and a tie otherwise. The judge's ranking of a task is
the Copeland grouping of its verdicts (`training.judges.copeland_groups`, the one aggregation).

Figures (definitions and thresholds: docs/quality.md, "AI judges"), each an `Interval`:
- agreement: against people, the share of pairs where the judge's verdict equals the people's
  strict majority (a tie is a verdict, pairs without a strict majority left out: as
  `agreement.pairwise_agreement` and `reliability.majority_agreement`); against gold, a tie
  earns half and pairs the gold ties are left out (as `reliability.gold_accuracy`);
- decided_accuracy: the same on pairs where neither the judge nor the reference tied: one minus
  the judge's error rate when it commits;
- kappa: Cohen's kappa of the judge's verdict (a, tie, b) against the reference verdict;
- tau_b: mean Kendall tau-b between the judge's ranking and each person's (or the gold order);
- position_consistency: share of comparisons whose two orders agree; picks_first_shown: share
  where it chose whichever was shown first both times (a primacy bias);
- longer_preferred vs reference_longer_preferred: how often the longer of two candidates of
  different length wins, for the judge and for the reference on the same tasks; length_gap is
  the judge's rate minus the reference's;
- reference_agreement: the same agreement for the people themselves (each person against the
  others' majority; on gold, people's gold accuracy): what a judge should be compared with.

Intervals are 95 % percentile bootstraps that resample whole tasks, as the leaderboard's do
(the pairs of one task are not independent), seeded so a refresh is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from feedback_app.preferences.quality.agreement import tau_b
from feedback_app.preferences.quality.judgements import (
    TIE,
    Judgement,
    PairVotes,
    by_task,
    verdict,
    verdicts,
)
from feedback_app.preferences.quality.reliability import LENGTH_BIAS_MIN_GAP, Flag
from training.judges.base import copeland_groups

# Fewer reference pairs than this and a set says nothing about trust (too wide to read).
MIN_PAIRS = 30
# Position consistency whose whole interval lies under this is flagged: one comparison in five
# flipping with the order is a judge reading position, not content.
MIN_POSITION_CONSISTENCY = 0.8
REPLICATES = 1000

# Columns of the per-task count table the bootstrap resamples.
(AGREE, AGREE_N, DECIDED, DECIDED_N, TAU, TAU_N, CONSISTENT, COMPARED, FIRST,
 LONGER, LONGER_N, REF_LONGER, REF_LONGER_N, BASE, BASE_N) = range(15)  # fmt: skip
CONFUSION = 15  # 9 columns: judge verdict index * 3 + reference verdict index (b, tie, a)
COLUMNS = CONFUSION + 9


@dataclass(frozen=True)
class JudgeComparison:
    """The judge's verdicts on candidates a < b of a task: a shown first, and b shown first."""

    task_id: int
    a: int
    b: int
    a_first: int
    b_first: int

    @property
    def verdict(self) -> int:
        return self.a_first if self.a_first == self.b_first else TIE

    @property
    def consistent(self) -> bool:
        return self.a_first == self.b_first


@dataclass(frozen=True)
class Interval:
    """A figure with its 95 % interval and how many trials (pairs, comparisons) it rests on."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def __str__(self) -> str:
        if self.value is None:
            return "n/a"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


@dataclass(frozen=True)
class JudgeFigures:
    """Every figure of one judge against one reference ("gold" or "people")."""

    reference: str
    tasks: int
    agreement: Interval
    decided_accuracy: Interval
    kappa: Interval
    tau_b: Interval
    position_consistency: Interval
    picks_first_shown: Interval
    longer_preferred: Interval
    reference_longer_preferred: Interval
    length_gap: Interval
    reference_agreement: Interval


@dataclass(frozen=True)
class Calibration:
    gold: JudgeFigures
    people: JudgeFigures


def calibrate(
    judge: Iterable[JudgeComparison],
    people: Iterable[Judgement],
    *,
    gold: Mapping[int, Mapping[int, int]] | None = None,
    lengths: Mapping[int, int] | None = None,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> Calibration:
    """The judge against the gold orders (tasks with one) and against people (tasks they ranked).

    `people` must not hold the judge's own rankings.
    """
    comparisons = _by_task(judge)
    humans = by_task(people)
    lengths = lengths or {}
    gold = gold or {}
    gold_rows = [
        _gold_row(cs, gold[t], humans.get(t, []), lengths)
        for t, cs in comparisons.items()
        if gold.get(t)
    ]
    people_rows = [
        _people_row(cs, humans[t], lengths) for t, cs in comparisons.items() if humans.get(t)
    ]
    return Calibration(
        gold=_figures("gold", gold_rows, replicates, seed),
        people=_figures("people", people_rows, replicates, seed),
    )


def trusted(calibration: Calibration, min_agreement: float, *, min_pairs: int = MIN_PAIRS) -> bool:
    """Whether the judge's votes may count: on every reference with at least `min_pairs` pairs
    (and at least one has), the lower end of the agreement interval reaches `min_agreement`."""
    sets = [
        f.agreement for f in (calibration.gold, calibration.people) if f.agreement.n >= min_pairs
    ]
    return bool(sets) and all(a.low is not None and a.low >= min_agreement for a in sets)


def judge_flags(calibration: Calibration, min_agreement: float) -> list[Flag]:
    """Why an admin should look at the judge, each with the numbers behind it."""
    out: list[Flag] = []
    for f in (calibration.gold, calibration.people):
        a = f.agreement
        if a.value is None:
            continue
        if a.n < MIN_PAIRS:
            out.append(Flag("few", f"only {a.n} pairs against {f.reference}, under {MIN_PAIRS}"))
        elif a.low is not None and a.low < min_agreement:
            out.append(
                Flag(
                    "agreement",
                    f"agrees with {f.reference} on {a.value:.0%} of {a.n} pairs (95 % from "
                    f"{a.low:.0%}), under the project's {min_agreement:.0%}",
                )
            )
    # Position and length are properties of the judge, read on the larger set.
    f = max((calibration.gold, calibration.people), key=lambda x: x.position_consistency.n)
    p = f.position_consistency
    if p.high is not None and p.high < MIN_POSITION_CONSISTENCY:
        out.append(
            Flag(
                "position",
                f"gives the same verdict in both orders on {p.value:.0%} of {p.n} comparisons "
                f"(95 % up to {p.high:.0%}), under {MIN_POSITION_CONSISTENCY:.0%}",
            )
        )
    g = f.length_gap
    if g.value is not None and abs(g.value) >= LENGTH_BIAS_MIN_GAP and (g.low > 0 or g.high < 0):
        out.append(
            Flag(
                "length",
                f"prefers the longer candidate in {f.longer_preferred.value:.0%} of pairs, "
                f"{f.reference}: {f.reference_longer_preferred.value:.0%} (gap {g.value:+.0%}, "
                f"95 % {g.low:+.0%} to {g.high:+.0%})",
            )
        )
    return out


# --- per-task counts -----------------------------------------------------------------------------


def _by_task(judge: Iterable[JudgeComparison]) -> dict[int, list[JudgeComparison]]:
    out: dict[int, list[JudgeComparison]] = {}
    for c in judge:
        if c.a > c.b:  # keep a < b, as every verdict in `judgements` is
            c = JudgeComparison(c.task_id, c.b, c.a, -c.b_first, -c.a_first)
        out.setdefault(c.task_id, []).append(c)
    return out


def judge_ranks(comparisons: list[JudgeComparison]) -> dict[int, int]:
    """The judge's ranking of a task (Copeland groups of its verdicts) as ranks, 1 best."""
    ids = sorted({x for c in comparisons for x in (c.a, c.b)})
    index = {c: i for i, c in enumerate(ids)}
    groups, _ = copeland_groups(
        len(ids), [(index[c.a], index[c.b], c.verdict) for c in comparisons]
    )
    return {ids[i]: g + 1 for g, group in enumerate(groups) for i in group}


def _common_row(cs: list[JudgeComparison], lengths: Mapping[int, int]) -> np.ndarray:
    row = np.zeros(COLUMNS)
    for c in cs:
        row[COMPARED] += 1
        row[CONSISTENT] += c.consistent
        row[FIRST] += c.a_first == 1 and c.b_first == -1  # the first shown, both times
        la, lb = lengths.get(c.a), lengths.get(c.b)
        if c.verdict != TIE and la is not None and lb is not None and la != lb:
            row[LONGER_N] += 1
            row[LONGER] += (c.verdict > 0) == (la > lb)
    return row


def _count_reference(row: np.ndarray, judged: int, ref: int, tie_earns: float) -> None:
    row[AGREE_N] += 1
    row[AGREE] += 1.0 if judged == ref else tie_earns if judged == TIE else 0.0
    row[CONFUSION + (judged + 1) * 3 + (ref + 1)] += 1
    if judged != TIE and ref != TIE:
        row[DECIDED_N] += 1
        row[DECIDED] += judged == ref


def _reference_length(
    row: np.ndarray, ranks: Mapping[int, int], lengths: Mapping[int, int]
) -> None:
    for a, b, v in verdicts({c: r for c, r in ranks.items() if c in lengths}):
        if v != TIE and lengths[a] != lengths[b]:
            row[REF_LONGER_N] += 1
            row[REF_LONGER] += (v > 0) == (lengths[a] > lengths[b])


def _tau(row: np.ndarray, mine: dict[int, int], other: Mapping[int, int]) -> None:
    t = tau_b(mine, dict(other))
    if t is not None:
        row[TAU] += t
        row[TAU_N] += 1


def _people_row(
    cs: list[JudgeComparison], humans: list[Judgement], lengths: Mapping[int, int]
) -> np.ndarray:
    row = _common_row(cs, lengths)
    votes: dict[tuple[int, int], PairVotes] = {}
    for j in humans:
        for a, b, v in verdicts(j.ranks):
            votes.setdefault((a, b), PairVotes()).add(v)
    for c in cs:
        pv = votes.get((c.a, c.b))
        majority = pv.majority() if pv else None
        if majority is not None:
            _count_reference(row, c.verdict, majority, tie_earns=0.0)
    mine = judge_ranks(cs)
    for j in humans:
        _tau(row, mine, j.ranks)
        _reference_length(row, j.ranks, lengths)
        for a, b, v in verdicts(j.ranks):  # each person against the others' majority
            majority = votes[(a, b)].majority(leave_out=v)
            pv = votes[(a, b)]
            if pv.total > 1 and majority is not None:
                row[BASE_N] += 1
                row[BASE] += majority == v
    return row


def _gold_row(
    cs: list[JudgeComparison],
    gold: Mapping[int, int],
    humans: list[Judgement],
    lengths: Mapping[int, int],
) -> np.ndarray:
    row = _common_row(cs, lengths)
    for c in cs:
        if c.a in gold and c.b in gold and (g := verdict(gold, c.a, c.b)) != TIE:
            _count_reference(row, c.verdict, g, tie_earns=0.5)
    _tau(row, judge_ranks(cs), gold)
    _reference_length(row, gold, lengths)
    for j in humans:  # people's gold accuracy on the same tasks, the judge's yardstick
        for a, b, v in verdicts({c: r for c, r in j.ranks.items() if c in gold}):
            g = verdict(gold, a, b)
            if g != TIE:
                row[BASE_N] += 1
                row[BASE] += 1.0 if v == g else 0.5 if v == TIE else 0.0
    return row


# --- figures and their intervals ------------------------------------------------------------------


def _ratio(s: np.ndarray, hits: int, n: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s[..., n] > 0, s[..., hits] / s[..., n], np.nan)


def _kappa(s: np.ndarray) -> np.ndarray:
    """Cohen's kappa (p_o - p_e) / (1 - p_e) from the 3 x 3 confusion columns, per row."""
    m = s[..., CONFUSION:COLUMNS].reshape(*s.shape[:-1], 3, 3)
    total = m.sum(axis=(-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p_o = np.trace(m, axis1=-2, axis2=-1) / total
        p_e = (m.sum(axis=-1) * m.sum(axis=-2)).sum(axis=-1) / total**2
        return np.where(p_e < 1, (p_o - p_e) / (1 - p_e), np.nan)


def _interval(value: np.ndarray, replicates: np.ndarray, n: float) -> Interval:
    v = float(value)
    if np.isnan(v):
        return Interval(None, None, None, int(n))
    reps = replicates[~np.isnan(replicates)]
    low, high = np.percentile(reps, [2.5, 97.5]) if len(reps) else (v, v)
    return Interval(v, float(low), float(high), int(n))


def _figures(reference: str, rows: list[np.ndarray], replicates: int, seed: int) -> JudgeFigures:
    table = np.array(rows).reshape(-1, COLUMNS)
    total = table.sum(axis=0)
    tasks = len(rows)
    if tasks:
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(tasks, np.full(tasks, 1 / tasks), size=replicates)
        boot = weights @ table
    else:
        boot = np.zeros((0, COLUMNS))

    def figure(fn) -> tuple[np.ndarray, np.ndarray]:
        return fn(total), fn(boot)

    def rate(hits: int, n: int) -> Interval:
        v, b = figure(lambda s: _ratio(s, hits, n))
        return _interval(v, b, total[n])

    judge_len, ref_len = rate(LONGER, LONGER_N), rate(REF_LONGER, REF_LONGER_N)
    gap_v, gap_b = figure(
        lambda s: _ratio(s, LONGER, LONGER_N) - _ratio(s, REF_LONGER, REF_LONGER_N)
    )
    kappa_v, kappa_b = figure(_kappa)
    return JudgeFigures(
        reference=reference,
        tasks=tasks,
        agreement=rate(AGREE, AGREE_N),
        decided_accuracy=rate(DECIDED, DECIDED_N),
        kappa=_interval(kappa_v, kappa_b, total[AGREE_N]),
        tau_b=rate(TAU, TAU_N),
        position_consistency=rate(CONSISTENT, COMPARED),
        picks_first_shown=rate(FIRST, COMPARED),
        longer_preferred=judge_len,
        reference_longer_preferred=ref_len,
        length_gap=_interval(gap_v, gap_b, min(total[LONGER_N], total[REF_LONGER_N])),
        reference_agreement=rate(BASE, BASE_N),
    )
