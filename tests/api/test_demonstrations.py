"""Demonstrations through the API: written or edited answers, stored with sanitised HTML, refused
naming the field, and turned into SFT rows and (edits) extra pairs marked `origin: "edit"`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedback_app.annotation.models import Candidate, Demonstration
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.services import snapshot_build
from feedback_app.preferences.stage_rows import StagePolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_world(world, settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path / "snapshots"
    world.project_a.demonstrations = True
    world.project_a.save()
    return world


def post(world, role, task, body):
    return world.client(role).post(f"/api/v1/tasks/{task.pk}/demonstration/", body, format="json")


def fields(response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


def test_an_annotator_writes_an_answer_stored_with_sanitised_html(demo_world):
    body = {"text": "A **good** answer <script>alert(1)</script>"}
    response = post(demo_world, "alice", demo_world.task_a, body)
    assert response.status_code == 201, response.json()
    demo = Demonstration.objects.get(pk=response.json()["id"])
    assert demo.edited_from is None and demo.html_is_current()
    assert "<strong>good</strong>" in demo.html and "<script" not in demo.html


def test_writing_again_replaces_the_annotators_demonstration(demo_world):
    post(demo_world, "alice", demo_world.task_a, {"text": "first"})
    post(demo_world, "alice", demo_world.task_a, {"text": "second"})
    assert list(Demonstration.objects.values_list("text", flat=True)) == ["second"]


def test_bad_demonstrations_are_refused_naming_the_field(demo_world):
    task = demo_world.task_a
    original = Candidate.objects.filter(task=task).first()
    other_task_candidate = Candidate.objects.exclude(task=task).first()
    cases = [
        ({"text": ""}, "text"),
        ({"text": 5}, "text"),
        ({}, "text"),
        ({"text": "x", "edited_from": "one"}, "edited_from"),
        ({"text": "x", "edited_from": other_task_candidate.pk}, "edited_from"),
        ({"text": original.text, "edited_from": original.pk}, "text"),
    ]
    for body, field in cases:
        response = post(demo_world, "alice", task, body)
        assert response.status_code == 400 and fields(response) == [field], body
    assert not Demonstration.objects.exists()


def test_a_project_without_demonstrations_refuses_them(world):
    response = post(world, "alice", world.task_a, {"text": "an answer"})
    assert response.status_code == 400 and fields(response) == ["text"]


def test_only_annotators_of_the_project_write_demonstrations(demo_world):
    assert post(demo_world, "bob", demo_world.task_a, {"text": "x"}).status_code == 404
    assert post(demo_world, "anonymous", demo_world.task_a, {"text": "x"}).status_code in (401, 403)
    assert not Demonstration.objects.exists()


def test_demonstrations_become_sft_rows_and_edits_extra_pairs_marked_edit(demo_world):
    task = demo_world.task_a
    original = Candidate.objects.filter(task=task).first()
    post(demo_world, "alice", task, {"text": " an improved answer", "edited_from": original.pk})
    project = demo_world.project_a

    sft = snapshot_build(project=project, policy=PairPolicy(), test_fraction=0.0, kind="sft",
                         stage=StagePolicy())  # fmt: skip
    rows = [json.loads(x) for x in (Path(sft.path) / "train.jsonl").read_text().splitlines()]
    assert rows == [{"prompt": task.prompt.text, "completion": " an improved answer"}]
    assert sft.counts["sources"] == {"demonstrations": 1}

    plain = snapshot_build(project=project, policy=PairPolicy(), test_fraction=0.0)
    edits = snapshot_build(project=project, policy=PairPolicy(include_edits=True), test_fraction=0)
    assert edits.counts["train"] == plain.counts["train"] + 1 and edits.counts["edit_pairs"] == 1
    pairs = demo_world.client("dave").get(
        f"/api/v1/projects/{project.pk}/pairs/?metadata=1&include_edits=1"
    )
    body = b"".join(pairs.streaming_content).decode()
    marked = [json.loads(x) for x in body.splitlines() if '"origin":"edit"' in x]
    assert len(marked) == 1
    assert (marked[0]["chosen"], marked[0]["rejected"]) == (" an improved answer", original.text)
