"""The one ranking validator, and the helpers that turn form input into groups (pure, no ORM).

A ranking is a list of groups of candidate ids, best first; a group of several ids is a tie.
Example: ``[[7], [5, 9], [6]]`` says 7 beats 5 and 9 (tied), which both beat 6.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.common.storable import character_problem

FLAGS = ("all_bad", "unsafe")
MAX_RATIONALE = 5000


def check_ranking(
    groups: object, candidate_ids: Sequence[int], *, field: str = "ranking", what: str = "id"
) -> list[list[int]]:
    """Return `groups` normalised (ids sorted inside each tie) or raise naming what is wrong.

    It must cover exactly the task's candidates, each once. `field` names the input in the
    problems: a gold order is checked here too, as "gold", over candidate indexes (`what`).
    """
    plural = f"{what}es" if what.endswith("x") else f"{what}s"
    hint = f"must be a list of groups of candidate {plural}, best first, e.g. [[3], [1, 2]]"
    if not isinstance(groups, list) or not groups:
        raise InvalidInput(Problem(field, hint))
    expected = set(candidate_ids)
    seen: set[int] = set()
    normalised: list[list[int]] = []
    for i, group in enumerate(groups):
        if not isinstance(group, list) or not group:
            raise InvalidInput(Problem(f"{field}[{i}]", f"must be a non-empty list; {hint}"))
        for cid in group:
            if isinstance(cid, bool) or not isinstance(cid, int):
                raise InvalidInput(Problem(f"{field}[{i}]", f"{cid!r} is not a candidate {what}"))
            if cid in seen:
                raise InvalidInput(Problem(f"{field}[{i}]", f"candidate {cid} appears twice"))
            if cid not in expected:
                raise InvalidInput(Problem(f"{field}[{i}]", f"candidate {cid} is not in this task"))
            seen.add(cid)
        normalised.append(sorted(group))
    missing = sorted(expected - seen)
    if missing:
        raise InvalidInput(Problem(field, f"candidates {missing} are not ranked"))
    return normalised


def check_flags(flags: object) -> list[str]:
    if flags is None:
        return []
    if not isinstance(flags, list | tuple) or not all(isinstance(f, str) for f in flags):
        raise InvalidInput(Problem("flags", f"must be a list of names from {list(FLAGS)}"))
    unknown = sorted(set(flags) - set(FLAGS))
    if unknown:
        raise InvalidInput(Problem("flags", f"unknown flags {unknown}; allowed: {list(FLAGS)}"))
    return sorted(set(flags))


def check_rationale(rationale: object, *, required: bool) -> str:
    if rationale is None:
        rationale = ""
    if not isinstance(rationale, str):
        raise InvalidInput(Problem("rationale", "must be text"))
    rationale = rationale.strip()
    if required and not rationale:
        raise InvalidInput(Problem("rationale", "this project asks for a short explanation"))
    if len(rationale) > MAX_RATIONALE:
        raise InvalidInput(Problem("rationale", f"at most {MAX_RATIONALE} characters"))
    if message := character_problem(rationale):
        raise InvalidInput(Problem("rationale", message))
    return rationale


def groups_from_ranks(ranks: Mapping[int, int]) -> list[list[int]]:
    """Turn {candidate id: rank number} (the no-JavaScript form) into groups; equal ranks tie.

    >>> groups_from_ranks({5: 2, 6: 1, 7: 2})
    [[6], [5, 7]]
    """
    by_rank: dict[int, list[int]] = {}
    for cid, rank in ranks.items():
        by_rank.setdefault(rank, []).append(cid)
    return [sorted(by_rank[r]) for r in sorted(by_rank)]


def payload_hash(groups: Iterable[Iterable[int]], rationale: str, flags: Iterable[str]) -> str:
    """Fingerprint of what was submitted, to answer a repeated submit as the first one."""
    payload = {"groups": [list(g) for g in groups], "rationale": rationale, "flags": list(flags)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def display_order(candidate_ids: Sequence[int], *, task_id: int, annotator_id: int) -> list[int]:
    """A per-annotator shuffle that is stable for the same task and annotator.

    Seeding by (task, annotator) keeps the order across reloads and lets position bias be
    studied, since every annotator sees their own order.
    """
    ids = sorted(candidate_ids)
    random.Random(f"{task_id}:{annotator_id}").shuffle(ids)
    return ids
