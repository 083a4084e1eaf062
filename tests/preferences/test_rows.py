"""One pipeline from rankings to rows: a snapshot and the export give the same rows.

Each case builds rankings, then reads them twice with one policy: as a snapshot (no test split,
so train.jsonl holds every row) and through the export API, streamed and in JSON pages. The
bytes must be equal, and the format (standard or conversational) the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from feedback_app.annotation import handout, services, submit
from feedback_app.annotation.importing import check_records
from feedback_app.preferences.dataset import PromptView, jsonl_bytes
from feedback_app.preferences.feedback import feedback_record
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.rows import PairRow, jsonl_rows, trl_rows
from feedback_app.preferences.services import snapshot_build

pytestmark = pytest.mark.django_db

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime."}]


@pytest.fixture(autouse=True)
def _snapshots(settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path / "snapshots"
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "100000/min", "anon": "100000/min"},
    }


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True)


def rank_all(project, user, order=lambda ids: [[i] for i in ids], flags=None):
    """`user` ranks every task handed to them by `order` of the sorted candidate ids."""
    while (a := handout.task_assign_next(project=project, annotator=user)) is not None:
        ids = sorted(c.pk for c in a.task.candidates.all())
        submit.ranking_submit(task_id=a.task_id, annotator=user, groups=order(ids), flags=flags)


def add_chat_task(project) -> None:
    records = check_records(
        [(1, {"prompt": CHAT, "candidates": ["2", "4", "9"][: project.candidates_per_task]})],
        k=project.candidates_per_task,
    )
    services.prompts_import(project=project, records=records)


def through_snapshot(project, policy: PairPolicy) -> tuple[bytes, str]:
    snap = snapshot_build(project=project, policy=policy, test_fraction=0.0)
    assert (Path(snap.path) / "test.jsonl").read_bytes() == b""
    return (Path(snap.path) / "train.jsonl").read_bytes(), snap.format


def through_export(project, policy: PairPolicy, user) -> tuple[bytes, str]:
    """The streamed export's bytes (checked equal to its JSON pages), and its format."""
    params = {
        "min_votes": policy.min_votes,
        "min_agreement": policy.min_agreement,
        "drop_all_bad": policy.drop_all_bad,
        "drop_unsafe": policy.drop_unsafe,
        "include_feedback": policy.include_feedback,
    }
    client = APIClient()
    client.force_authenticate(user)
    url = f"/api/v1/projects/{project.pk}/pairs/"
    response = client.get(f"{url}?{urlencode(params)}")
    assert response.status_code == 200
    streamed = b"".join(response.streaming_content)
    paged, cursor = [], None
    while True:
        query = {**params, "format": "json", "page_size": 2}
        if cursor is not None:
            query["cursor"] = cursor
        body = client.get(f"{url}?{urlencode(query)}").json()
        paged += body["results"]
        if (cursor := body["next"]) is None:
            break
    assert jsonl_bytes(paged) == streamed, "pages and stream differ"
    rows = [json.loads(line) for line in streamed.splitlines()]
    chat = {isinstance(r["prompt"], list) for r in rows}
    assert len(chat) <= 1, "one export, one format"
    return streamed, "conversational" if chat == {True} else "standard"


def same_rows(project, policy: PairPolicy, user) -> tuple[list[dict], str]:
    snapshot, snapshot_format = through_snapshot(project, policy)
    export, export_format = through_export(project, policy, user)
    assert export_format == snapshot_format
    assert export == snapshot
    return [json.loads(line) for line in snapshot.splitlines()], snapshot_format


def test_chat_prompts_make_snapshot_and_export_conversational_alike(make_project, alice, bob, root):
    project = make_project(name="C", k=3, overlap=2, n_tasks=3, annotators=[alice, bob])
    add_chat_task(project)
    rank_all(project, alice)
    rank_all(project, bob)
    rows, fmt = same_rows(project, PairPolicy(), root)
    assert fmt == "conversational" and len(rows) == 4 * 3
    assert CHAT in [r["prompt"] for r in rows]
    assert [{"role": "user", "content": "C 0"}] in [r["prompt"] for r in rows]


def test_ties_give_the_same_rows_either_way(make_project, alice, bob, root):
    project = make_project(name="T", k=3, overlap=2, n_tasks=3, annotators=[alice, bob])
    rank_all(project, alice, order=lambda ids: [[ids[0], ids[1]], [ids[2]]])  # a tie
    rank_all(project, bob, order=lambda ids: [[ids[1]], [ids[0]], [ids[2]]])
    rows, fmt = same_rows(project, PairPolicy(min_agreement=0.5), root)
    # (0, 1): bob's vote against alice's tie, agreement 0.5: kept; (0, 2) and (1, 2): unanimous.
    assert fmt == "standard" and len(rows) == 3 * 3
    strict = same_rows(project, PairPolicy(min_agreement=0.6), root)[0]
    assert len(strict) == 3 * 2, "the tied pair is dropped at 0.6 by both"


def test_a_chat_ranked_only_all_bad_leaves_both_standard(make_project, alice, bob, root):
    project = make_project(name="B", k=3, overlap=1, n_tasks=2, annotators=[alice, bob])
    rank_all(project, alice)  # the text tasks
    add_chat_task(project)
    rank_all(project, bob, flags=["all_bad"])  # the chat task: its only ranking is all-bad
    rows, fmt = same_rows(project, PairPolicy(drop_all_bad=True), root)
    assert fmt == "standard" and len(rows) == 2 * 3
    rows, fmt = same_rows(project, PairPolicy(drop_all_bad=False), root)
    assert fmt == "conversational" and len(rows) == 3 * 3


def test_deployment_feedback_gives_the_same_rows_either_way(make_project, alice, root):
    project = make_project(name="F", k=2, overlap=1, n_tasks=2, annotators=[alice])
    rank_all(project, alice)
    feedback_record(
        project=project, kind="choice", source="web", prompt="q", chosen="a", rejected="b"
    )
    for response, rating in [("good", "up"), ("bad", "down")]:
        feedback_record(
            project=project,
            kind="thumbs",
            source="web",
            prompt=CHAT,
            response=response,
            rating=rating,
        )
    rows, fmt = same_rows(project, PairPolicy(include_feedback=True), root)
    assert fmt == "conversational", "a chat from feedback makes the dataset conversational"
    assert len(rows) == 2 + 2
    assert {"role": "user", "content": "q"} in [m for r in rows for m in r["prompt"]]
    without, fmt = same_rows(project, PairPolicy(), root)
    assert fmt == "standard" and len(without) == 2


def test_the_exports_fast_encoder_gives_the_bytes_of_trl_rows():
    odd = "".join(map(chr, range(0x80))) + 'é€😀\u2028"\\'
    text, chat = (
        PromptView("t", text=odd),
        PromptView("c", messages=[*CHAT, {"content": odd, "role": "user"}]),
    )
    rows = [
        PairRow(1, text, odd, "b"),
        PairRow(1, text, "b", odd),
        PairRow(2, chat, "x", odd, {"votes": 2, "agreement": 0.666667}),
        PairRow(None, chat, odd, "y"),
    ]
    for as_chat in (False, True):
        subset = rows if as_chat else rows[:2]
        assert jsonl_rows(subset, chat=as_chat) == jsonl_bytes(trl_rows(subset, chat=as_chat))
