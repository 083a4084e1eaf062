"""Rankings -> preference pairs -> aggregated votes -> kept pairs. Pure: no ORM, no Django.

Vocabulary: a *ranking* is a list of groups of candidate ids, best first (a group is a tie). Its
*pairs* are every (better, worse) across two groups; ids in one group give no pair, only a tie
vote. *Aggregation* counts, for each unordered pair of candidates of a task, how many annotators
preferred each side and how many tied them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from training.config import ConfigError, Range, bounded, check_ranges


def pairs_from_ranking(groups: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Every (better, worse) pair across groups; ties give none.

    >>> pairs_from_ranking([[7], [5, 9], [6]])
    [(7, 5), (7, 9), (7, 6), (5, 6), (9, 6)]
    """
    out = []
    for i, better in enumerate(groups):
        for worse in groups[i + 1 :]:
            out.extend((b, w) for b in better for w in worse)
    return out


def ties_in_ranking(groups: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Unordered pairs (low id first) that a ranking tied."""
    out = []
    for g in groups:
        if len(g) > 1:
            ids = sorted(g)
            out.extend((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return out


@dataclass(frozen=True)
class RankingRow:
    """What aggregation needs of one stored ranking."""

    task_id: int
    annotator_id: int
    groups: list[list[int]]
    all_bad: bool = False
    unsafe: bool = False


@dataclass(slots=True)
class PairVotes:
    """Votes on one unordered candidate pair (a < b) of one task."""

    task_id: int
    a: int
    b: int
    for_a: int = 0
    for_b: int = 0
    ties: int = 0
    annotators: list[int] = field(default_factory=list)
    # What the pair counts in training beside a pair people decided (1): an AI judge's
    # `judge_weight` on a pair only judges voted on (`people_first`).
    weight: float = 1.0

    @property
    def total(self) -> int:
        return self.for_a + self.for_b + self.ties

    @property
    def chosen(self) -> int | None:
        """The side with more votes; None on a draw."""
        if self.for_a == self.for_b:
            return None
        return self.a if self.for_a > self.for_b else self.b

    @property
    def rejected(self) -> int | None:
        chosen = self.chosen
        return None if chosen is None else (self.b if chosen == self.a else self.a)

    @property
    def votes(self) -> int:
        """Votes for the chosen side."""
        return max(self.for_a, self.for_b)

    @property
    def agreement(self) -> float:
        """Share of everyone who judged the pair (ties included) that sided with the majority."""
        return self.votes / self.total if self.total else 0.0

    @property
    def margin(self) -> float:
        """(votes for chosen - votes for rejected) / judges: 1 unanimous, 0 a draw."""
        return abs(self.for_a - self.for_b) / self.total if self.total else 0.0


def aggregate(
    rankings: Iterable[RankingRow], weights: Mapping[int, float] | None = None
) -> list[PairVotes]:
    """Count votes per (task, unordered candidate pair), in a stable order.

    weights: annotator -> what each of their votes counts (1 when absent), for a policy that
    weights flagged annotators (`PairPolicy.flagged_weight`); counts are then floats.
    The export's hot loop (a million pairs a minute): `pairs_from_ranking` and `ties_in_ranking`
    written out inline, one dict look-up a vote.
    """
    table: dict[tuple[int, int, int], PairVotes] = {}
    get = table.get
    for r in rankings:
        task, annotator, groups = r.task_id, r.annotator_id, r.groups
        w = weights.get(annotator, 1) if weights else 1
        for i, better in enumerate(groups):
            for worse in groups[i + 1 :]:
                for x in better:
                    for y in worse:
                        if x <= y:  # as `a, b = sorted(...)`: an equal id counts for a
                            key = (task, x, y)
                            if (votes := get(key)) is None:
                                votes = table[key] = PairVotes(task, x, y)
                            votes.for_a += w
                        else:
                            key = (task, y, x)
                            if (votes := get(key)) is None:
                                votes = table[key] = PairVotes(task, y, x)
                            votes.for_b += w
                        votes.annotators.append(annotator)
        for x, y in ties_in_ranking(groups):
            key = (task, x, y)
            if (votes := get(key)) is None:
                votes = table[key] = PairVotes(task, x, y)
            votes.ties += w
            votes.annotators.append(annotator)
    return [table[k] for k in sorted(table)]


def people_first(
    rankings: Iterable[RankingRow],
    weights: Mapping[int, float] | None,
    judges: Collection[int],
) -> tuple[list[PairVotes], int]:
    """`aggregate` where people have the last word on a pair: (votes, judge pairs overruled).

    Issue 23: a judge's "votes count only as far as it agrees with people". Counted beside a
    person's, a judge who disagrees makes a draw and the pair is dropped, so the rankings
    people give where the judge is unsure repair nothing. So on a pair any person voted on,
    people's votes decide and the judges' are set aside (counted in `overruled`); on a pair
    only judges voted on, their votes count as votes (min_votes, min_agreement apply to them
    as to people's) and the judges' weight (`weights`: the policy's judge_weight) becomes
    the pair's `weight`, not a fraction of a vote that never reaches min_votes.
    """
    people: list[RankingRow] = []
    ai: list[RankingRow] = []
    for r in rankings:
        (ai if r.annotator_id in judges else people).append(r)
    votes = aggregate(people, weights)
    if not ai:
        return votes, 0
    decided = {(v.task_id, v.a, v.b) for v in votes}
    overruled = 0
    for v in aggregate(ai):
        if (v.task_id, v.a, v.b) in decided:
            overruled += 1
            continue
        voters = set(v.annotators)
        v.weight = sum(weights.get(j, 1) if weights else 1 for j in voters) / len(voters)
        votes.append(v)
    votes.sort(key=lambda v: (v.task_id, v.a, v.b))
    return votes, overruled


VOTE_SOURCES = ("people", "judges", "both")
# Whose counted votes an exported row rests on (its "source" column, in projects with AI
# judges): people only, AI judges only, or both.
PEOPLE, JUDGE, BOTH = "people", "judge", "both"


def pair_source(annotators: Iterable[int], judges: Collection[int]) -> str:
    """ "people", "judge" or "both": who cast the votes a pair (or a row) rests on.

    >>> pair_source([1, 2], {9}), pair_source([9], {9}), pair_source([1, 9], {9})
    ('people', 'judge', 'both')
    """
    voters = set(annotators)
    ai = bool(voters & set(judges))
    if not ai:
        return PEOPLE
    return JUDGE if voters <= set(judges) else BOTH


@dataclass(frozen=True)
class PairPolicy:
    """Which aggregated pairs become training data.

    min_votes: votes the chosen side needs; min_agreement: share of judges on the chosen side;
    drop_all_bad: ignore rankings flagged "all candidates are bad" (their order says little);
    drop_unsafe: ignore rankings flagged unsafe. Draws (no majority) are always dropped, since
    TRL's formats cannot express a tie. include_feedback: add the pairs that deployment
    feedback gives (`preferences.feedback`); off by default, so annotators' rankings and end
    users' clicks stay apart unless a snapshot asks for both. flagged_weight: what a vote of an
    annotator flagged on the quality report (`FLAGS_THAT_DISCOUNT`) counts: 1 as anyone's (the
    default), 0 dropped, in between weighted; the snapshot records whom it applied to.
    votes: whose rankings count (issue 23): "people" (the default: no AI judge's), "judges"
    (only trusted judges': docs/quality.md, "AI judges") or "both": people decide every pair
    they voted on, a trusted judge the pairs no person did, each such pair weighing
    judge_weight (0..1) in training (`people_first`). Untrusted judges never count.
    """

    # Bounds as the training configs declare theirs (the launch form reads them from here):
    # no task is ranked by more than 50 annotators (Project.annotations_per_task).
    min_votes: int = bounded(1, Range(1, 1000, integer=True))
    min_agreement: float = bounded(0.5, Range(0, 1))
    drop_all_bad: bool = True
    drop_unsafe: bool = False
    include_feedback: bool = False
    # Each pair's vote strength (`PairVotes.margin`) as TRL's `margin` column, which
    # RewardTrainer reads (loss -logsigmoid(r_c - r_r - margin)).
    with_margin: bool = False
    # Pairs from demonstrations that edit a candidate: the edit over the original
    # (`origin: "edit"` in an export's metadata).
    include_edits: bool = False
    flagged_weight: float = bounded(1.0, Range(0, 1))
    votes: str = "people"
    judge_weight: float = bounded(1.0, Range(0, 1))

    def __post_init__(self) -> None:
        """Raise ValueError ("field: rule") for a value out of type or bounds."""
        try:
            check_ranges(self)
        except ConfigError as exc:
            # Only the rule, not the value: `got ...` repeats what the user just sent.
            raise ValueError(str(exc).partition(", got")[0]) from None
        if self.votes not in VOTE_SOURCES:
            raise ValueError(f"votes: one of {', '.join(VOTE_SOURCES)}")
        for name in (
            "drop_all_bad",
            "drop_unsafe",
            "include_feedback",
            "with_margin",
            "include_edits",
        ):
            # "false" is a non-empty string: taken as truthy, it would mean the opposite.
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be true or false")

    def to_dict(self) -> dict:
        data = asdict(self)
        # Left out while off, so snapshots built before the flag existed keep their hash.
        for flag in ("include_feedback", "with_margin", "include_edits"):
            if not data[flag]:
                del data[flag]
        if self.flagged_weight == 1:
            del data["flagged_weight"]
        if self.votes == "people":  # as before judges: snapshots keep their hash
            del data["votes"]
        if self.votes != "both" or self.judge_weight == 1:
            del data["judge_weight"]
        return data

    @property
    def discounts_flagged(self) -> bool:
        return self.flagged_weight < 1


# The quality report's flags that say an annotator's votes are suspect (docs/quality.md); a
# high skip rate does not make the rankings they did give any worse.
FLAGS_THAT_DISCOUNT = frozenset({"majority", "gold", "position", "length", "fast"})


def flagged_weights(policy: PairPolicy, flagged: Iterable[int]) -> dict[int, float] | None:
    """annotator -> weight of their votes under `policy` (None: everyone counts 1)."""
    if not policy.discounts_flagged:
        return None
    return dict.fromkeys(flagged, policy.flagged_weight)


def select_rankings(
    rankings: Iterable[RankingRow],
    policy: PairPolicy,
    weights: Mapping[int, float] | None = None,
) -> list[RankingRow]:
    """The rankings whose votes count: flags as the policy says, weight-0 annotators dropped."""
    return [
        r
        for r in rankings
        if not (policy.drop_all_bad and r.all_bad)
        and not (policy.drop_unsafe and r.unsafe)
        and not (weights and weights.get(r.annotator_id, 1) == 0)
    ]


def keep_pairs(votes: Iterable[PairVotes], policy: PairPolicy) -> list[PairVotes]:
    """Pairs with a majority that meets the policy's vote and agreement thresholds.

    `chosen`, `votes` and `agreement` written out: this runs once a pair in the export.
    """
    min_votes, min_agreement = policy.min_votes, policy.min_agreement
    out = []
    for v in votes:
        fa, fb = v.for_a, v.for_b
        if fa == fb:
            continue  # a draw: no chosen side
        n = fa if fa > fb else fb
        if n >= min_votes and n / (fa + fb + v.ties) >= min_agreement:
            out.append(v)
    return out


def pairwise_agreement(rankings: Iterable[RankingRow]) -> float | None:
    """How often two annotators who judged the same pair gave the same verdict (ties count).

    Averaged over every pair of annotators on every candidate pair; None without overlap.
    """
    verdicts: dict[tuple[int, int, int], list[int]] = {}
    for r in rankings:
        for better, worse in pairs_from_ranking(r.groups):
            a, b = sorted((better, worse))
            verdicts.setdefault((r.task_id, a, b), []).append(1 if better == a else -1)
        for a, b in ties_in_ranking(r.groups):
            verdicts.setdefault((r.task_id, a, b), []).append(0)
    same = total = 0
    for vs in verdicts.values():
        for i, x in enumerate(vs):
            for y in vs[i + 1 :]:
                total += 1
                same += x == y
    return same / total if total else None
