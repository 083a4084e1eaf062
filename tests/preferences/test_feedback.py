"""Deployment feedback: checked like an import, turned into pairs, in snapshots only on request."""

from __future__ import annotations

import json

import pytest

from feedback_app.common.errors import InvalidInput
from feedback_app.preferences.feedback import FeedbackRow, feedback_record, pairs_from_feedback
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.services import snapshot_build


def test_thumbs_pair_every_up_with_every_down_of_the_same_prompt():
    rows = [
        FeedbackRow("h", "thumbs", "good", "up"),
        FeedbackRow("h", "thumbs", "fine", "up"),
        FeedbackRow("h", "thumbs", "bad", "down"),
        FeedbackRow("other", "thumbs", "lonely", "down"),
    ]
    assert pairs_from_feedback(rows) == [("h", "fine", "bad"), ("h", "good", "bad")]


def test_a_choice_is_a_pair_and_contradicting_choices_cancel():
    rows = [FeedbackRow("h", "choice", chosen="a", rejected="b")]
    assert pairs_from_feedback(rows) == [("h", "a", "b")]
    rows.append(FeedbackRow("h", "choice", chosen="b", rejected="a"))
    assert pairs_from_feedback(rows) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "stars"}, "kind"),
        ({"source": ""}, "source"),
        ({"prompt": [{"role": "assistant", "content": "x"}]}, "prompt"),
        ({"rating": "meh"}, "rating"),
        ({"response": None}, "response"),
        ({"model_version": 999}, "model_version"),
        ({"metadata": []}, "metadata"),
    ],
)
def test_bad_feedback_names_the_field(make_project, fields, field):
    project = make_project(name="F", k=2, n_tasks=1)
    base = {"kind": "thumbs", "source": "web", "prompt": "hi", "response": "yo", "rating": "up"}
    with pytest.raises(InvalidInput) as err:
        feedback_record(project=project, **{**base, **fields})
    assert err.value.field == field


@pytest.mark.django_db
def test_snapshots_include_feedback_only_when_the_policy_says_so(make_project, settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path
    project = make_project(name="F", k=2, n_tasks=1)
    without = snapshot_build(project=project, policy=PairPolicy(), test_fraction=0)
    feedback_record(
        project=project, kind="choice", source="web", prompt="q", chosen="a", rejected="b"
    )
    assert snapshot_build(project=project, policy=PairPolicy(), test_fraction=0) == without
    assert "include_feedback" not in without.policy  # hashes of older snapshots are unchanged

    with_feedback = snapshot_build(
        project=project, policy=PairPolicy(include_feedback=True), test_fraction=0
    )
    assert with_feedback.counts["feedback_pairs"] == 1
    with open(f"{with_feedback.path}/train.jsonl") as fh:
        rows = [json.loads(line) for line in fh]
    assert rows == [{"prompt": "q", "chosen": "a", "rejected": "b"}]


def test_policy_refuses_a_non_boolean_include_feedback():
    with pytest.raises(ValueError, match="include_feedback"):
        PairPolicy(include_feedback="yes")
