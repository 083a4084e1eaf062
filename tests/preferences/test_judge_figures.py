"""The AI judges' calibration on the quality pages and API (issue 23), and people's figures
without the judges' rankings."""

from __future__ import annotations

import pytest
from django.urls import reverse

from feedback_app.annotation.handout import task_assign_next
from feedback_app.annotation.judge_votes import judge_ranking_submit
from feedback_app.annotation.submit import ranking_submit
from feedback_app.core.models import Membership
from feedback_app.preferences import reports
from feedback_app.workspace.judges import JudgeSpec, judge_add
from tests.api.conftest import client_for
from training.judges.base import Cost, JudgeRanking, PairVerdict, Verdict

pytestmark = pytest.mark.django_db


def judge_ranking(order: list[int], best_first: list[int], *, flip: bool = False) -> JudgeRanking:
    """A judge's ranking of candidates shown in `order` that prefers `best_first`'s order;
    `flip`: every pair answered by position (first shown wins both times: ties)."""
    rank = {c: i for i, c in enumerate(best_first)}
    comparisons = []
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            v = 1 if rank[order[i]] < rank[order[j]] else -1
            a_first, b_first = (1, -1) if flip else (v, v)
            verdict = Verdict(v if not flip else 0, 0.5 * v, "r", Cost(3, 0.01), a_first, b_first)
            comparisons.append(PairVerdict(i, j, verdict))
    groups = [[order.index(c)] for c in best_first] if not flip else [list(range(len(order)))]
    return JudgeRanking(groups=groups, comparisons=comparisons)


def rank_round(project, people, judge_user, *, flip=False):
    """(`judge_user` None: people only.)"""
    """Every person and the judge rank every task: people best = lowest candidate id."""
    for user in people:
        while (a := task_assign_next(project=project, annotator=user)) is not None:
            ids = sorted(a.display_order)
            ranking_submit(task_id=a.task_id, annotator=user, groups=[[c] for c in ids])
    while judge_user and (a := task_assign_next(project=project, annotator=judge_user)):
        order = list(a.display_order)
        judge_ranking_submit(
            task_id=a.task_id, project_id=project.pk, annotator=judge_user, order=order,
            ranking=judge_ranking(order, sorted(order), flip=flip),
        )  # fmt: skip


@pytest.fixture
def judged(make_project, make_user, alice, bob):
    project = make_project(name="Q", k=3, overlap=3, n_tasks=12, annotators=[alice, bob])
    Membership.objects.filter(project=project, user=alice).update(role="admin")
    judge = judge_add(
        project=project,
        spec=JudgeSpec(name="ai", kind="openai", base_url="http://127.0.0.1:9/v1", model_name="m"),
    )
    return project, judge


def test_a_judge_agreeing_with_people_is_measured_and_trusted(judged, alice, bob):
    project, judge = judged
    project.judge_min_agreement = 0.5
    project.save()
    rank_round(project, [alice, bob], judge.user)
    figures = reports.quality_refresh(project=project).figures
    (row,) = figures["judges"]
    people = row["people"]
    assert people["agreement"]["value"] == 1.0 and people["agreement"]["n"] == 36
    assert people["position_consistency"]["value"] == 1.0
    assert people["tau_b"]["value"] == 1.0
    assert people["kappa"]["value"] is None  # one verdict only on both sides: chance is 1
    assert row["trusted"] and not row["flags"]
    # The people's own figures leave the judge out.
    assert {r["annotator"] for r in figures["reliability"]} == {"alice", "bob"}


def test_a_judge_reading_position_is_flagged_and_not_trusted(judged, alice, bob):
    project, judge = judged
    rank_round(project, [alice, bob], judge.user, flip=True)
    (row,) = reports.quality_refresh(project=project).figures["judges"]
    assert row["people"]["position_consistency"]["value"] == 0.0
    assert row["people"]["picks_first_shown"]["value"] == 1.0
    assert row["people"]["agreement"]["value"] == 0.0  # all ties against a strict majority
    assert row["people"]["kappa"]["value"] == 0.0
    assert not row["trusted"]
    assert {"position", "agreement"} <= {f["code"] for f in row["flags"]}


def test_judges_figures_are_on_the_quality_page_and_api(judged, alice, bob, client):
    project, judge = judged
    rank_round(project, [alice, bob], judge.user)
    reports.quality_refresh(project=project)
    client.force_login(alice)
    page = client.get(reverse("preferences:quality-figure", args=[project.pk, "judges"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="judge-ai-people"' in html and "1.00" in html
    body = client_for(alice).get(f"/api/v1/projects/{project.pk}/quality/judges/").json()
    assert body["figure"][0]["name"] == "ai"
    assert body["figure"][0]["people"]["agreement"]["value"] == 1.0


def _pairs(project, **policy) -> int:
    from feedback_app.preferences.pairs import PairPolicy
    from feedback_app.preferences.rows import RowQuery, pair_rows_by_task

    q = RowQuery(policy=PairPolicy(**policy))
    return sum(len(rows) for _, rows in pair_rows_by_task(project, q))


def test_a_snapshot_policy_takes_people_judges_or_both(judged, alice, bob):
    project, judge = judged
    project.judge_min_agreement = 0.5
    project.save()
    rank_round(project, [alice, bob], judge.user)
    assert _pairs(project) == 36  # people's votes only, as before judges
    assert _pairs(project, min_votes=3) == 0  # two people: never three votes
    assert _pairs(project, votes="judges") == 0  # no calibration stored yet: not trusted
    reports.quality_refresh(project=project)
    assert _pairs(project, votes="judges") == 36
    assert _pairs(project, votes="both") == 36
    # People have the last word on a pair they voted on: two people's votes, never three.
    assert _pairs(project, votes="both", min_votes=3) == 0


def test_people_decide_every_pair_they_voted_on_and_the_snapshot_counts_the_judge_overruled(
    judged, alice, settings, tmp_path
):
    """One person and a trusted judge who reverses every pair: counted side by side each pair
    was a draw and dropped; people decide it instead, and the snapshot says so."""
    from feedback_app.preferences.pairs import PairPolicy
    from feedback_app.preferences.services import snapshot_build

    project, judge = judged
    project.judge_min_agreement = 0.0  # trusted whatever its agreement
    project.save()
    rank_round(project, [alice], None)
    while (a := task_assign_next(project=project, annotator=judge.user)) is not None:
        order = list(a.display_order)
        judge_ranking_submit(
            task_id=a.task_id, project_id=project.pk, annotator=judge.user, order=order,
            ranking=judge_ranking(order, sorted(order, reverse=True)),
        )  # fmt: skip
    reports.quality_refresh(project=project)
    assert _pairs(project, votes="judges") == 36  # trusted: its votes do count alone
    assert _sources(project, votes="both") == ["people"] * 36
    settings.SNAPSHOT_DIR = tmp_path
    snap = snapshot_build(project=project, policy=PairPolicy(votes="both"), test_fraction=0.0)
    assert snap.counts["pairs"] == 36
    assert snap.counts["judge_overruled"] == 36 and snap.counts["judge_pairs"] == 0
    people = snapshot_build(project=project, policy=PairPolicy(), test_fraction=0.0)
    assert "judge_overruled" not in people.counts  # as before judges: the hash stays


def test_an_untrusted_judge_never_counts(judged, alice, bob):
    project, judge = judged
    rank_round(project, [alice, bob], judge.user, flip=True)
    reports.quality_refresh(project=project)
    assert _pairs(project, votes="judges") == 0
    assert _pairs(project, votes="both", min_votes=3) == 0


def test_a_policy_records_whose_votes_it_took():
    from feedback_app.preferences.pairs import PairPolicy

    assert "votes" not in PairPolicy().to_dict()  # old snapshots keep their hash
    assert PairPolicy(votes="both", judge_weight=0.5).to_dict()["votes"] == "both"
    with pytest.raises(ValueError, match="votes"):
        PairPolicy(votes="robots")


def _sources(project, **policy) -> list[str | None]:
    from feedback_app.preferences.pairs import PairPolicy
    from feedback_app.preferences.rows import RowQuery, pair_rows_by_task, trl_rows

    q = RowQuery(policy=PairPolicy(**policy))
    rows = [r for _, task_rows in pair_rows_by_task(project, q) for r in task_rows]
    return [row.get("source") for row in trl_rows(rows, chat=False)]


@pytest.fixture
def mixed(judged, alice, bob):
    """People and a trusted judge ranked every task; then people's rankings of one task are
    gone, so that task's pairs rest on the judge alone."""
    from feedback_app.annotation.models import Ranking

    project, judge = judged
    project.judge_min_agreement = 0.5
    project.save()
    rank_round(project, [alice, bob], judge.user)
    reports.quality_refresh(project=project)
    alone = project.tasks.order_by("id").first()
    Ranking.objects.filter(task=alone, annotator__in=[alice, bob]).delete()
    return project


def test_exported_pairs_say_whether_people_a_judge_or_both_voted(mixed):
    assert _sources(mixed) == ["people"] * 33  # people only: the judge's task gives nothing
    assert _sources(mixed, votes="judges") == ["judge"] * 36
    both = _sources(mixed, votes="both")
    assert both[:3] == ["judge"] * 3 and both[3:] == ["people"] * 33  # task order


def test_a_down_weighted_judge_keeps_the_pairs_it_alone_voted_on_at_its_weight(mixed):
    """judge_weight 0.5: the judge-only task's pairs are kept (its vote is a vote, not half of
    one under min_votes 1) and weigh 0.5 in TRL's `margin`; people's pairs weigh 1."""
    from feedback_app.preferences.pairs import PairPolicy
    from feedback_app.preferences.rows import RowQuery, pair_rows_by_task, trl_rows

    q = RowQuery(PairPolicy(votes="both", judge_weight=0.5, with_margin=True), metadata=True)
    rows = trl_rows([r for _, rs in pair_rows_by_task(mixed, q) for r in rs], chat=False)
    assert [(r["source"], r["margin"], r["weight"]) for r in rows] == (
        [("judge", 0.5, 0.5)] * 3 + [("people", 1.0, 1.0)] * 33
    )


def test_the_export_api_takes_the_votes_policy_and_marks_each_row(mixed, client):
    from feedback_app.core.models import Membership

    admin = Membership.objects.get(project=mixed, role="admin").user
    api = client_for(admin)
    body = api.get(f"/api/v1/projects/{mixed.pk}/pairs/?format=json&votes=both&page_size=5000")
    assert body.status_code == 200
    assert {r["source"] for r in body.json()["results"]} == {"judge", "people"}
    bad = api.get(f"/api/v1/projects/{mixed.pk}/pairs/?votes=robots")
    assert bad.status_code == 400 and "votes" in bad.json()["errors"][0]["field"]


def test_kto_and_sft_rows_from_rankings_count_votes_by_the_policy_and_say_whose(
    mixed, settings, tmp_path
):
    from feedback_app.preferences.pairs import PairPolicy
    from feedback_app.preferences.services import snapshot_build
    from feedback_app.preferences.stage_rows import StagePolicy
    from training.data import read_jsonl

    settings.SNAPSHOT_DIR = tmp_path

    def rows(kind: str, **policy) -> list[dict]:
        snap = snapshot_build(
            project=mixed, policy=PairPolicy(**policy), test_fraction=0.0, kind=kind,
            stage=StagePolicy(kto_from_rankings=True, sft_from_rankings=True),
        )  # fmt: skip
        return read_jsonl(f"{snap.path}/train.jsonl")

    people = rows("kto")  # the judge's lone task is nobody's under "people"
    assert len(people) == 11 and {r["source"] for r in people} == {"people"}
    assert {r["source"] for r in rows("kto", votes="both")} == {"judge", "both"}
    assert {r["source"] for r in rows("sft", votes="judges")} == {"judge"}


def test_a_project_without_judges_exports_no_source_column(make_project, alice, bob):
    project = make_project(name="plain", k=3, overlap=2, n_tasks=2, annotators=[alice, bob])
    for user in (alice, bob):
        while (a := task_assign_next(project=project, annotator=user)) is not None:
            ids = sorted(a.display_order)
            ranking_submit(task_id=a.task_id, annotator=user, groups=[[c] for c in ids])
    assert _sources(project) == [None] * 6  # the bytes of before: snapshots keep their hash


@pytest.mark.slow
def test_rows_marked_with_their_source_load_into_trl_trainers_unchanged(
    mixed, settings, tmp_path, tiny_policy
):
    """The "source" column rides along: DPO, reward, KTO and SFT trainers read the files as
    written (one step each on the tiny model)."""
    import math
    from pathlib import Path

    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from feedback_app.preferences.pairs import PairPolicy
    from feedback_app.preferences.services import snapshot_build
    from feedback_app.preferences.stage_rows import StagePolicy
    from tests.api.test_trl_roundtrip import _args
    from tests.preferences.test_stage_snapshots import _train_one_step_each
    from training.data import read_jsonl

    settings.SNAPSHOT_DIR = tmp_path
    policy = PairPolicy(votes="both")
    stage = StagePolicy(kto_from_rankings=True, sft_from_rankings=True)
    snaps = {
        "pairs": snapshot_build(project=mixed, policy=policy, test_fraction=0.0),
        "kto": snapshot_build(
            project=mixed, policy=policy, test_fraction=0.0, kind="kto", stage=stage
        ),
        "sft": snapshot_build(
            project=mixed, policy=policy, test_fraction=0.0, kind="sft", stage=stage
        ),
    }
    for kind, snap in snaps.items():
        written = read_jsonl(Path(snap.path) / "train.jsonl")
        # A pair people voted on is theirs (people decide it); a top candidate or an all-bad
        # task rests on every counted ranking.
        both = "people" if kind == "pairs" else "both"
        assert {r["source"] for r in written} == {"judge", both}, kind
    _train_one_step_each(snaps, tiny_policy)
    dataset = load_dataset(
        "json", data_files=str(Path(snaps["pairs"].path) / "train.jsonl"), split="train"
    )
    dpo = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_policy),
        args=_args(DPOConfig, tmp_path),
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_policy),
    )
    assert math.isfinite(dpo.train().training_loss)
