import json
from pathlib import Path

import pytest

from feedback_app.annotation.simulation import simulate
from feedback_app.core.models import DatasetSnapshot
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.services import rankings_since_last_snapshot, snapshot_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def ranked_project(make_project, make_user, settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path / "snapshots"
    bots = [make_user(f"bot-{i}") for i in range(3)]
    project = make_project(n_tasks=20, k=3, overlap=3, annotators=bots)
    # Distinct texts so the bots' rule gives real preferences: positive words win.
    for task in project.tasks.all():
        for cand, text in zip(
            task.candidates.all(), ["useful and valid", "plain", "an error"], strict=True
        ):
            cand.text = f"{text} {task.pk}"
            cand.save()
    simulate(project=project, annotators=bots, noise=0.2, seed=1)
    return project


def read(snapshot: DatasetSnapshot, name: str) -> list[dict]:
    lines = (Path(snapshot.path) / name).read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_building_the_same_snapshot_twice_gives_the_same_hash_and_row(ranked_project):
    first = snapshot_build(project=ranked_project, policy=PairPolicy(), test_fraction=0.3, seed=0)
    again = snapshot_build(project=ranked_project, policy=PairPolicy(), test_fraction=0.3, seed=0)
    assert first.pk == again.pk and first.content_hash == again.content_hash
    assert DatasetSnapshot.objects.count() == 1
    other = snapshot_build(
        project=ranked_project, policy=PairPolicy(min_votes=2), test_fraction=0.3
    )
    assert other.content_hash != first.content_hash


def test_snapshot_files_are_trl_rows_split_by_prompt_with_counts_and_policy(ranked_project):
    snap = snapshot_build(
        project=ranked_project, policy=PairPolicy(min_agreement=0.6), test_fraction=0.3
    )
    train, test = read(snap, "train.jsonl"), read(snap, "test.jsonl")
    assert train and test
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in train + test)
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}, "a prompt on both sides"
    assert snap.counts["train"] == len(train) and snap.counts["test"] == len(test)
    meta = json.loads((Path(snap.path) / "meta.json").read_text())
    assert meta["policy"]["min_agreement"] == 0.6 == snap.policy["min_agreement"]
    assert snap.format == "standard"


def test_rankings_since_the_last_snapshot_are_counted(ranked_project):
    assert rankings_since_last_snapshot(project=ranked_project) == 60
    snapshot_build(project=ranked_project, policy=PairPolicy())
    assert rankings_since_last_snapshot(project=ranked_project) == 0
