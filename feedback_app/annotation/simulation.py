"""Simulated annotators: a documented rule ranks candidates, through the same services as people.

The rule (for demos, load tests, the end-to-end test and the benches): a candidate's score is
the number of distinct positive words of `training.lexicon` it uses minus the number of distinct
negative ones (the words the Python documentation uses, e.g. "useful", "valid" against "error",
"fails"), minus half a point for every word that repeats the word before it. Equal scores tie.

Why this rule and not the earlier "sentiment + 0.5 x distinct-word share": a share of distinct
words is highest for the shortest texts (one word: 1.0), so among equally positive candidates
the shorter won, and the benches taught the policies to write less (docs/benchmarks.md). Here
length earns nothing by itself: a longer text scores only by the distinct positive words it
uses, repeating a positive word gains nothing, and degenerate runs ("= = =", "one one one")
lose. The product knows nothing of this rule (no lexicon outside the benches' judges): a second,
undisclosed preference checks the loop the same way. With `noise` > 0, each adjacent pair of
groups is swapped with that probability, like a careless annotator.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from feedback_app.common.auth import user_get_or_create
from feedback_app.core.models import Membership
from training.lexicon import NEGATIVE, POSITIVE, words_of

from . import handout, submit
from .models import Candidate

Score = Callable[[Any], float]  # of a text (the rule), or of a candidate row (`prefer`)


def rule_score(text: str) -> float:
    """Distinct positive - distinct negative lexicon words - 0.5 a word repeating the one before.

    >>> rule_score("useful useful useful"), rule_score("useful and valid"), rule_score("one one")
    (0.5, 2.0, -0.5)
    """
    words = words_of(text)
    distinct = set(words)
    repeats = sum(a == b for a, b in zip(words, words[1:], strict=False))
    return len(distinct & POSITIVE) - len(distinct & NEGATIVE) - 0.5 * repeats


def rank_by_score(
    candidates: Sequence[tuple[int, Any]],
    *,
    score: Score = rule_score,
    rng: random.Random | None = None,
    noise: float = 0.0,
    tie_break: bool = False,
) -> list[list[int]]:
    """Groups of candidate ids, best first; equal scores share a group (a tie).

    With `tie_break`, equal scores are ordered by a stable hash of the text instead: a bot that
    must choose where the rule sees no difference prefers nothing in particular (not length),
    so a round of texts the rule cannot tell apart still gives the loop pairs (the benches).

    >>> rank_by_score([(1, "an error"), (2, "useful and valid"), (3, "plain"), (4, "plain plain")])
    [[2], [3], [4], [1]]
    """
    by_score: dict[float, list[int]] = {}
    for cid, text in candidates:
        by_score.setdefault(score(text), []).append(cid)
    groups = [sorted(by_score[s]) for s in sorted(by_score, reverse=True)]
    if tie_break:
        texts = dict(candidates)
        groups = [
            [cid]
            for group in groups
            for cid in sorted(group, key=lambda c: hashlib.sha256(str(texts[c]).encode()).digest())
        ]
    if noise and rng is not None:
        for i in range(len(groups) - 1):
            if rng.random() < noise:
                groups[i], groups[i + 1] = groups[i + 1], groups[i]
    return groups


@dataclass(frozen=True)
class SimulationResult:
    submitted: int


def bots_ensure(*, project, count: int, prefix: str = "bot") -> list:
    """Bot annotators ``{prefix}-1`` .. ``{prefix}-{count}``, members of `project`; made once.

    Users are made as Django's ``create_user`` makes them (the name NFKC-normalised, an unusable
    password), so a second run finds the same bots however the prefix was spelt.
    """

    bots = []
    for i in range(1, count + 1):
        bot, _ = user_get_or_create(username=f"{prefix}-{i}")
        Membership.objects.get_or_create(project=project, user=bot)
        bots.append(bot)
    return bots


def simulate(
    *,
    project,
    annotators: Sequence,
    noise: float = 0.0,
    seed: int = 0,
    max_tasks: int | None = None,
    prefer: Callable[[Candidate], float] | None = None,
    tie_break: bool = False,
) -> SimulationResult:
    """Each bot in turn takes its next task and ranks it, until nothing is left (or max_tasks).

    `prefer` ranks by a score of the candidate row instead of the rule, e.g. by the model that
    wrote it, to force a verdict (tests: people who prefer the parent in a head-to-head)."""

    rng = random.Random(seed)
    submitted = 0
    active = list(annotators)
    while active and (max_tasks is None or submitted < max_tasks):
        for bot in list(active):
            assignment = handout.task_assign_next(project=project, annotator=bot)
            if assignment is None:
                active.remove(bot)
                continue
            rows = Candidate.objects.in_bulk(assignment.display_order)
            if prefer is None:
                shown = [(cid, rows[cid].text) for cid in assignment.display_order]
                groups = rank_by_score(shown, rng=rng, noise=noise, tie_break=tie_break)
            else:
                shown = [(cid, rows[cid]) for cid in assignment.display_order]
                groups = rank_by_score(shown, score=prefer, rng=rng, noise=noise)
            submit.ranking_submit(task_id=assignment.task_id, annotator=bot, groups=groups)
            submitted += 1
            if max_tasks is not None and submitted >= max_tasks:
                break
    return SimulationResult(submitted=submitted)
