"""The shared vocabulary: ranks from stored groups, verdicts, vote counts, and the doctests."""

from __future__ import annotations

import doctest

import pytest

from feedback_app.preferences.quality import agreement, judgements, significance
from feedback_app.preferences.quality.judgements import (
    A_BETTER,
    B_BETTER,
    TIE,
    Judgement,
    PairVotes,
    ranks_from_groups,
    task_votes,
    verdicts,
)


@pytest.mark.parametrize("module", [judgements, agreement, significance])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_groups_become_dense_ranks_and_verdicts_per_pair():
    ranks = ranks_from_groups([[7], [5, 9], [6]])
    assert list(verdicts(ranks)) == [
        (5, 6, A_BETTER),
        (5, 7, B_BETTER),
        (5, 9, TIE),
        (6, 7, B_BETTER),
        (6, 9, B_BETTER),
        (7, 9, A_BETTER),
    ]


def test_votes_are_counted_per_task_and_pair():
    votes = task_votes(
        [
            Judgement(1, 7, {1: 1, 2: 2}),
            Judgement(1, 8, {1: 1, 2: 1}),
            Judgement(2, 7, {1: 2, 2: 1}),
        ]
    )
    assert votes[1].judgements == 2 and votes[1].pairs[(1, 2)] == PairVotes(1, 0, 1)
    assert votes[2].pairs[(1, 2)] == PairVotes(0, 1, 0)


def test_the_majority_needs_a_strict_lead_and_can_leave_one_vote_out():
    assert PairVotes(2, 1, 0).majority() == A_BETTER
    assert PairVotes(2, 2, 0).majority() is None
    assert PairVotes(2, 1, 0).majority(leave_out=A_BETTER) is None
    assert PairVotes(0, 0, 1).majority(leave_out=TIE) is None
