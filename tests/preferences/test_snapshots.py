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


def test_gold_tasks_pairs_follow_the_yardstick_in_the_test_file_and_are_never_trained_on(
    ranked_project,
):
    from feedback_app.annotation.gold import task_gold_set

    tasks = list(ranked_project.tasks.order_by("id"))
    plain = snapshot_build(
        project=ranked_project, policy=PairPolicy(), test_fraction=0.3, hold_out_eval_set=True
    )
    assert "gold" not in plain.counts  # no gold task: the snapshot is as before
    gold_task = tasks[0]
    ids = sorted(gold_task.candidates.values_list("pk", flat=True))
    task_gold_set(project=ranked_project, task_id=gold_task.pk, groups=[[ids[2]], [ids[0], ids[1]]])
    snap = snapshot_build(
        project=ranked_project, policy=PairPolicy(), test_fraction=0.3, hold_out_eval_set=True
    )
    train, test = read(snap, "train.jsonl"), read(snap, "test.jsonl")
    n_yard = snap.counts["yardstick"]
    assert snap.counts["gold"] == 2  # the expected order's two pairs (the tie gives none)
    gold = test[n_yard : n_yard + 2]
    texts = dict(gold_task.candidates.values_list("pk", "text"))
    assert [(r["chosen"], r["rejected"]) for r in gold] == [
        (texts[ids[2]], texts[ids[0]]),
        (texts[ids[2]], texts[ids[1]]),
    ]
    assert gold_task.prompt.text not in {r["prompt"] for r in train}


def _rounds_of(snap: DatasetSnapshot, rows: list[dict]) -> list[int]:
    from feedback_app.annotation.models import Task

    by_prompt = dict(Task.objects.filter(project=snap.project).values_list("prompt__text", "round"))
    return [by_prompt[r["prompt"]] for r in rows]


def test_a_snapshot_takes_every_rounds_pairs_and_says_how_many_each_round_gave(ranked_project):
    from feedback_app.annotation.models import Task

    ids = list(
        Task.objects.filter(project=ranked_project).order_by("id").values_list("pk", flat=True)
    )
    Task.objects.filter(pk__in=ids[10:]).update(round=2)
    snap = snapshot_build(project=ranked_project, policy=PairPolicy(), test_fraction=0.3)
    rounds = _rounds_of(snap, read(snap, "train.jsonl"))
    assert set(rounds) == {1, 2}
    assert snap.counts["rounds"] == {"1": rounds.count(1), "2": rounds.count(2)}
    assert "recency" not in snap.policy  # off by default: every round weighs the same


def test_a_recency_half_life_repeats_newer_rounds_rows_by_their_weight_and_records_it(
    ranked_project,
):
    from feedback_app.annotation.models import Task

    ids = list(
        Task.objects.filter(project=ranked_project).order_by("id").values_list("pk", flat=True)
    )
    Task.objects.filter(pk__in=ids[10:]).update(round=3)  # round 1, then round 3
    plain = snapshot_build(project=ranked_project, policy=PairPolicy(), test_fraction=0.3)
    weighted = snapshot_build(
        project=ranked_project, policy=PairPolicy(), test_fraction=0.3, recency_half_life=1.0
    )
    pairs = read(plain, "train.jsonl")
    rows = read(weighted, "train.jsonl")
    n1, n3 = plain.counts["rounds"]["1"], plain.counts["rounds"]["3"]
    assert weighted.counts["rounds"] == plain.counts["rounds"]  # the distinct pairs
    assert len(rows) == len(pairs) == weighted.counts["train"]  # the epoch keeps its size
    assert {tuple(sorted(r.items())) for r in rows} <= {tuple(sorted(r.items())) for r in pairs}
    recency = weighted.policy["recency"]
    assert recency == {"half_life": 1.0, "newest_round": 3, "weights": {"1": 0.25, "3": 1.0}}
    got = _rounds_of(weighted, rows)
    assert weighted.counts["recency_rows"] == {"1": got.count(1), "3": got.count(3)}
    # Round 3's share of the rows is its share of the weight (to one row, systematic sampling).
    share = 1.0 * n3 / (1.0 * n3 + 0.25 * n1)
    assert abs(got.count(3) - share * len(pairs)) <= 1
    assert weighted.content_hash != plain.content_hash
    again = snapshot_build(
        project=ranked_project, policy=PairPolicy(), test_fraction=0.3, recency_half_life=1.0
    )
    assert again.content_hash == weighted.content_hash  # the draw is seeded: the same bytes
