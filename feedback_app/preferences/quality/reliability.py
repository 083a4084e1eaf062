"""Per-annotator reliability and bias, and the flags an admin should look at, with reasons.

Everything here compares an annotator with the others or with a known answer; none of it needs
more than the judgements (with display order and time), skip counts, gold orders and candidate
lengths. Thresholds are the named constants below, documented in docs/quality.md: an admin
reads a flag's reason, not a score, so each reason gives the numbers behind it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from feedback_app.preferences.quality.judgements import (
    TIE,
    Judgement,
    task_votes,
    verdict,
    verdicts,
)
from feedback_app.preferences.quality.significance import binomial_test

# Fewer rankings than this and no flag is raised: a handful of rankings is noise, not a pattern.
MIN_RANKINGS_TO_FLAG = 20
# Agreement with the leave-one-out majority below this: about what ordering at random gives
# (0.5 on strict pairs) plus a margin.
MIN_MAJORITY_AGREEMENT = 0.6
# Gold accuracy below this, once at least MIN_GOLD_PAIRS gold pairs were judged.
MIN_GOLD_ACCURACY = 0.7
MIN_GOLD_PAIRS = 10
# Position bias: flagged when first-shown-ranked-first differs from 1/K by at least this much
# AND the exact binomial test rejects 1/K at this level (both: big enough to matter, unlikely
# to be chance).
POSITION_BIAS_MIN_GAP = 0.15
POSITION_BIAS_P = 0.001
# Length bias: how often the longer candidate wins, against the median of all annotators (the
# project's candidates may truly be better when longer; only a departure from peers is a bias).
LENGTH_BIAS_MIN_GAP = 0.25
LENGTH_BIAS_P = 0.001
# Median time per task below this share of the median annotator's: reading K answers takes time.
FAST_FRACTION_OF_MEDIAN = 0.25
# Skipping more than this share of the tasks handed out.
MAX_SKIP_RATE = 0.5


@dataclass(frozen=True)
class Rate:
    """hits of trials, with the rate and (when tested) a two-sided exact binomial p-value."""

    hits: float
    trials: int
    expected: float | None = None
    p_value: float | None = None

    @property
    def value(self) -> float | None:
        return self.hits / self.trials if self.trials else None


@dataclass(frozen=True)
class Flag:
    """Why an annotator's work deserves a look: a stable code and a sentence with the numbers."""

    code: str  # majority, gold, position, length, fast, skips
    reason: str


@dataclass
class AnnotatorReliability:
    """One annotator's row of the reliability page; a figure without data is Rate(0, 0)."""

    annotator_id: int
    rankings: int
    median_seconds: float | None
    majority_agreement: Rate
    gold_accuracy: Rate
    skips: int
    position_bias: Rate
    length_bias: Rate
    flags: list[Flag] = field(default_factory=list)

    @property
    def skip_rate(self) -> float | None:
        handed_out = self.rankings + self.skips
        return self.skips / handed_out if handed_out else None


def majority_agreement(judgements: list[Judgement]) -> dict[int, Rate]:
    """Per annotator: share of their pair verdicts equal to the others' majority on that pair.

    The majority is the verdict (a, b or tie) with strictly the most votes among the OTHER
    annotators of the task; pairs where the others have no strict majority are left out.
    """
    votes = task_votes(judgements)
    agree: Counter[int] = Counter()
    compared: Counter[int] = Counter()
    for j in judgements:
        pairs = votes[j.task_id].pairs
        for a, b, v in verdicts(j.ranks):
            majority = pairs[(a, b)].majority(leave_out=v)
            if majority is not None:
                compared[j.annotator_id] += 1
                agree[j.annotator_id] += majority == v
    return {a: Rate(agree[a], compared[a]) for a in compared}


def gold_accuracy(
    judgements: Iterable[Judgement], gold: Mapping[int, Mapping[int, int]]
) -> dict[int, Rate]:
    """Per annotator: share of gold-ordered pairs ordered the same way; a tie earns half.

    Pairs the gold order ties are left out (the gold says nothing about them).
    """
    hits: dict[int, float] = defaultdict(float)
    pairs: Counter[int] = Counter()
    for j in judgements:
        expected = gold.get(j.task_id)
        if not expected:
            continue
        ranks = {c: r for c, r in j.ranks.items() if c in expected}
        for a, b, v in verdicts(ranks):
            g = verdict(expected, a, b)
            if g == TIE:
                continue
            pairs[j.annotator_id] += 1
            hits[j.annotator_id] += 1.0 if v == g else 0.5 if v == TIE else 0.0
    return {a: Rate(hits[a], pairs[a]) for a in pairs}


def position_bias(judgements: Iterable[Judgement]) -> dict[int, Rate]:
    """Per annotator: how often the first-shown candidate is ranked alone at the top, vs 1/K.

    Trials are rankings with a display order and a single best candidate (a tie at the top says
    nothing of which was preferred). K must be the same for all of an annotator's trials (it is
    fixed per project); the test is the exact binomial test against 1/K.
    """
    hits: Counter[int] = Counter()
    trials: Counter[int] = Counter()
    ks: dict[int, set[int]] = defaultdict(set)
    for j in judgements:
        if not j.display_order:
            continue
        best = min(j.ranks.values())
        top = [c for c, r in j.ranks.items() if r == best]
        if len(top) != 1:
            continue
        trials[j.annotator_id] += 1
        hits[j.annotator_id] += top[0] == j.display_order[0]
        ks[j.annotator_id].add(len(j.display_order))
    out = {}
    for a, n in trials.items():
        if len(ks[a]) != 1:
            raise ValueError(
                f"display_order: annotator {a} was shown different numbers of candidates"
            )
        p0 = 1 / ks[a].pop()
        out[a] = Rate(hits[a], n, p0, binomial_test(hits[a], n, p0))
    return out


def length_bias(judgements: Iterable[Judgement], lengths: Mapping[int, int]) -> dict[int, Rate]:
    """Per annotator: how often the longer of two candidates of different length is preferred.

    Only pairs the annotator ordered strictly count. The test (against the median annotator's
    rate) is added by `annotator_reliability`, since it needs everyone's rate.
    """
    hits: Counter[int] = Counter()
    trials: Counter[int] = Counter()
    for j in judgements:
        for a, b, v in verdicts(j.ranks):
            la, lb = lengths.get(a), lengths.get(b)
            if v == TIE or la is None or lb is None or la == lb:
                continue
            trials[j.annotator_id] += 1
            hits[j.annotator_id] += (v > 0) == (la > lb)
    return {a: Rate(hits[a], n) for a, n in trials.items()}


def annotator_reliability(
    judgements: Iterable[Judgement],
    *,
    skips: Mapping[int, int] | None = None,
    gold: Mapping[int, Mapping[int, int]] | None = None,
    lengths: Mapping[int, int] | None = None,
) -> list[AnnotatorReliability]:
    """Every figure per annotator (sorted by id), with flags raised by the module's thresholds."""
    js = list(judgements)
    skips = skips or {}
    seconds: dict[int, list[float]] = defaultdict(list)
    counts: Counter[int] = Counter()
    for j in js:
        counts[j.annotator_id] += 1
        if j.seconds is not None:
            seconds[j.annotator_id].append(j.seconds)
    majority = majority_agreement(js)
    golds = gold_accuracy(js, gold or {})
    positions = position_bias(js)
    longer = length_bias(js, lengths or {})
    peer_length = _median([r.value for r in longer.values() if r.value is not None])
    if peer_length is not None:
        longer = {
            a: Rate(
                r.hits, r.trials, peer_length, binomial_test(int(r.hits), r.trials, peer_length)
            )
            for a, r in longer.items()
        }
    medians = {a: statistics.median(s) for a, s in seconds.items() if s}
    peer_seconds = _median(list(medians.values()))
    out = []
    for a in sorted(set(counts) | set(skips)):
        row = AnnotatorReliability(
            annotator_id=a,
            rankings=counts[a],
            median_seconds=medians.get(a),
            majority_agreement=majority.get(a, Rate(0, 0)),
            gold_accuracy=golds.get(a, Rate(0, 0)),
            skips=skips.get(a, 0),
            position_bias=positions.get(a, Rate(0, 0)),
            length_bias=longer.get(a, Rate(0, 0)),
        )
        row.flags = flags(row, peer_seconds=peer_seconds)
        out.append(row)
    return out


def flags(row: AnnotatorReliability, *, peer_seconds: float | None) -> list[Flag]:
    """The reasons, if any, an admin should look at this annotator's work."""
    out: list[Flag] = []
    handed_out = row.rankings + row.skips
    skip_rate = row.skip_rate
    if handed_out >= MIN_RANKINGS_TO_FLAG and skip_rate is not None and skip_rate > MAX_SKIP_RATE:
        reason = f"skipped {row.skips} of {handed_out} tasks ({skip_rate:.0%})"
        out.append(Flag("skips", f"{reason}, more than {MAX_SKIP_RATE:.0%}"))
    if row.rankings < MIN_RANKINGS_TO_FLAG:
        return out
    m = row.majority_agreement
    if m.value is not None and m.value < MIN_MAJORITY_AGREEMENT:
        reason = f"agrees with the others' majority on {m.value:.0%} of {m.trials} pairs"
        out.append(Flag("majority", f"{reason}, under {MIN_MAJORITY_AGREEMENT:.0%}"))
    g = row.gold_accuracy
    if g.value is not None and g.trials >= MIN_GOLD_PAIRS and g.value < MIN_GOLD_ACCURACY:
        reason = f"gold accuracy {g.value:.0%} on {g.trials} pairs"
        out.append(Flag("gold", f"{reason}, under {MIN_GOLD_ACCURACY:.0%}"))
    p = row.position_bias
    if _biased(p, POSITION_BIAS_MIN_GAP, POSITION_BIAS_P):
        reason = f"ranks the first-shown candidate first in {p.value:.0%} of {p.trials} rankings"
        out.append(Flag("position", f"{reason} (1/K = {p.expected:.0%}, p = {p.p_value:.1e})"))
    n = row.length_bias
    if _biased(n, LENGTH_BIAS_MIN_GAP, LENGTH_BIAS_P):
        reason = f"prefers the longer candidate in {n.value:.0%} of {n.trials} pairs"
        out.append(
            Flag("length", f"{reason} (peers' median {n.expected:.0%}, p = {n.p_value:.1e})")
        )
    fast = FAST_FRACTION_OF_MEDIAN * (peer_seconds or 0)
    if row.median_seconds is not None and row.median_seconds < fast:
        share = f"{FAST_FRACTION_OF_MEDIAN:.0%} of the median annotator's"
        reason = f"median {row.median_seconds:.1f} s a task, under {fast:.1f} s"
        out.append(Flag("fast", f"{reason} ({share})"))
    return out


def _biased(rate: Rate, min_gap: float, max_p: float) -> bool:
    return (
        rate.value is not None
        and rate.expected is not None
        and rate.p_value is not None
        and abs(rate.value - rate.expected) >= min_gap
        and rate.p_value < max_p
    )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
