"""The review queue: confident reward-model disagreements with the human majority, in order."""

from __future__ import annotations

import pytest

from feedback_app.preferences.quality.judgements import Judgement
from feedback_app.preferences.quality.review import review_queue


def J(task, annotator, ranks):
    return Judgement(task, annotator, ranks)


JS = [
    # Task 1: humans 2-1 for candidate 1 over 2.
    J(1, 7, {1: 1, 2: 2}), J(1, 8, {1: 1, 2: 2}), J(1, 9, {1: 2, 2: 1}),
    # Task 2: humans 3-0 for 3 over 4.
    J(2, 7, {3: 1, 4: 2}), J(2, 8, {3: 1, 4: 2}), J(2, 9, {3: 1, 4: 2}),
    # Task 3: a draw, no majority.
    J(3, 7, {5: 1, 6: 2}), J(3, 8, {5: 2, 6: 1}),
]  # fmt: skip


def test_pairs_the_model_reverses_beyond_the_margin_come_most_confident_first():
    scores = {1: 0.0, 2: 1.5, 3: 0.0, 4: 3.0, 5: 0.0, 6: 9.0}
    queue = review_queue(JS, scores, margin=1.0)
    assert [(d.task_id, d.chosen, d.rejected) for d in queue] == [(2, 3, 4), (1, 1, 2)]
    assert (queue[0].votes_for, queue[0].votes_against, queue[0].margin) == (3, 0, 3.0)
    assert queue[0].confidence == pytest.approx(1 / (1 + 2.718281828459045**-3))


def test_a_small_reversal_or_an_agreement_is_not_queued():
    assert review_queue(JS, {1: 0.0, 2: 0.5, 3: 1.0, 4: 0.0}, margin=1.0) == []


def test_the_margin_is_a_strict_threshold():
    scores = {1: 0.0, 2: 1.0, 3: 0.0, 4: 1.0001}
    assert [d.task_id for d in review_queue(JS, scores, margin=1.0)] == [2]
