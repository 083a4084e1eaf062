"""Pairs export: TRL's rows, the same pairs as a snapshot, stable order, filters, pages."""

from __future__ import annotations

import json

import pytest
from django.http import StreamingHttpResponse

from feedback_app.annotation import handout, services, submit
from feedback_app.annotation.importing import check_records

from .conftest import client_for


def rank_all(project, users, order=lambda ids: [[i] for i in ids]):
    """Every user ranks every task they are handed, by `order` of the sorted candidate ids."""
    for user in users:
        while (a := handout.task_assign_next(project=project, annotator=user)) is not None:
            ids = sorted(c.pk for c in a.task.candidates.all())
            submit.ranking_submit(task_id=a.task_id, annotator=user, groups=order(ids))


@pytest.fixture
def ranked(make_project, make_user, alice, bob):
    project = make_project(name="A", k=3, overlap=2, n_tasks=5, annotators=[alice, bob])
    rank_all(project, [alice, bob])
    return project


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True)


def export(client, project, query: str = "") -> list[dict]:
    response = client.get(f"/api/v1/projects/{project.pk}/pairs/{query}")
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/jsonl"
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_export_is_standard_trl_rows_in_a_stable_order(ranked, root):
    rows = export(client_for(root), ranked)
    assert len(rows) == 5 * 3  # 5 tasks, 3 candidate pairs each, both annotators agree
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in rows)
    assert all(isinstance(r[k], str) for r in rows for k in r)
    assert rows[0]["chosen"].endswith("answer 0") and rows[0]["rejected"].endswith("answer 1")
    assert export(client_for(root), ranked) == rows


def test_export_has_the_same_pairs_as_a_snapshot(ranked, root):
    from feedback_app.preferences.pairs import PairPolicy
    from feedback_app.preferences.services import snapshot_build

    snap = snapshot_build(project=ranked, policy=PairPolicy(), test_fraction=0.0)
    with open(f"{snap.path}/train.jsonl") as fh:
        snapshot_rows = [json.loads(line) for line in fh]
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(map(key, export(client_for(root), ranked))) == sorted(map(key, snapshot_rows))


def test_chat_prompts_make_the_whole_export_conversational(ranked, root, alice):
    records = check_records(
        [(1, {"prompt": [{"role": "user", "content": "hi"}], "candidates": ["x", "y", "z"]})],
        k=3,
    )
    services.prompts_import(project=ranked, records=records)
    rank_all(ranked, [alice])
    rows = export(client_for(root), ranked)
    assert all(isinstance(r["prompt"], list) for r in rows)
    assert {r["prompt"][-1]["role"] for r in rows} == {"user"}
    assert all(r["chosen"][0]["role"] == "assistant" for r in rows)
    assert [{"role": "user", "content": "hi"}] in [r["prompt"] for r in rows]


def test_metadata_columns_only_when_asked(ranked, root):
    rows = export(client_for(root), ranked, "?metadata=1")
    assert rows[0]["votes"] == 2 and rows[0]["agreement"] == 1.0 and rows[0]["round"] == 1
    assert {"ties", "judges", "margin", "chosen_model", "rejected_model", "task"} <= set(rows[0])


def test_filters(ranked, root, make_user):
    client = client_for(root)
    assert len(export(client, ranked, "?min_votes=3")) == 0
    assert len(export(client, ranked, "?round=2")) == 0
    assert len(export(client, ranked, "?since=2999-01-01T00:00:00Z")) == 0
    assert len(export(client, ranked, "?model=nobody")) == 0
    bad = client.get(f"/api/v1/projects/{ranked.pk}/pairs/?min_agreement=2")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "min_agreement"


def test_disagreement_is_filtered_by_min_agreement(make_project, alice, bob, root):
    project = make_project(name="D", k=2, overlap=2, n_tasks=1, annotators=[alice, bob])
    rank_all(project, [alice])
    rank_all(project, [bob], order=lambda ids: [[ids[0], ids[1]]])  # bob ties them
    client = client_for(root)
    assert len(export(client, project)) == 1  # 1 vote of 2 judges: agreement 0.5
    assert export(client, project, "?min_agreement=0.6") == []


def test_json_pages_with_a_cursor_add_up_to_the_stream(ranked, root):
    client = client_for(root)
    rows, cursor = [], None
    while True:
        query = f"?format=json&page_size=4{'&cursor=' + cursor if cursor else ''}"
        page = client.get(f"/api/v1/projects/{ranked.pk}/pairs/{query}").json()
        rows += page["results"]
        cursor = page["next"]
        if cursor is None:
            break
    assert rows == export(client, ranked)
