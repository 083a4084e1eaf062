"""Snapshot policies that drop or weight the votes of annotators the quality report flags."""

from __future__ import annotations

import pytest
from django.db import transaction

from feedback_app.annotation.models import Ranking
from feedback_app.preferences import reports
from feedback_app.preferences.pairs import PairPolicy, RankingRow, aggregate, keep_pairs
from feedback_app.preferences.services import snapshot_build

from .test_reports import BOTS, run_bots


def test_flagged_weight_is_bounded_and_left_out_of_the_record_at_its_default():
    assert "flagged_weight" not in PairPolicy().to_dict()  # old snapshots keep their hash
    assert PairPolicy(flagged_weight=0.5).to_dict()["flagged_weight"] == 0.5
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="flagged_weight"):
            PairPolicy(flagged_weight=bad)


def test_a_weighted_vote_counts_its_weight_so_a_flagged_pair_of_votes_loses_to_one_vote():
    rows = [
        RankingRow(1, 10, [[1], [2]]),  # trusted: 1 over 2
        RankingRow(1, 20, [[2], [1]]),  # flagged
        RankingRow(1, 30, [[2], [1]]),  # flagged
    ]
    (plain,) = aggregate(rows)
    assert plain.chosen == 2
    (weighted,) = aggregate(rows, {20: 0.25, 30: 0.25})
    assert (weighted.for_a, weighted.for_b, weighted.chosen) == (1, 0.5, 1)
    assert keep_pairs([weighted], PairPolicy(min_votes=1, min_agreement=0.6))


@pytest.fixture
def simulated(make_project, make_user, settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path / "snapshots"
    users = {b.name: make_user(b.name) for b in BOTS}
    project = make_project(name="Pol", k=4, overlap=3, n_tasks=100, annotators=users.values())
    run_bots(project, users)
    return project, users


@pytest.mark.django_db
def test_dropping_flagged_votes_records_whom_and_changes_the_pairs(simulated):
    project, users = simulated
    keep = snapshot_build(project=project, policy=PairPolicy(), test_fraction=0)
    reports.quality_refresh(project=project)
    drop = snapshot_build(project=project, policy=PairPolicy(flagged_weight=0), test_fraction=0)
    report = reports.quality_report(project=project).report
    flagged = sorted(r["annotator_id"] for r in report.figures["reliability"] if r["flags"])
    assert users["first"].pk in flagged and users["careful"].pk not in flagged
    assert drop.policy["flagged_annotators"] == flagged
    assert drop.policy["flagged_weight"] == 0
    assert "flagged_annotators" not in keep.policy
    # Derived another way than the pipeline under test: the flagged people's rankings deleted,
    # then a snapshot at the default policy (in a transaction rolled back after).
    with transaction.atomic():
        Ranking.objects.filter(task__project=project, annotator_id__in=flagged).delete()
        without = snapshot_build(project=project, policy=PairPolicy(), test_fraction=0)
        transaction.set_rollback(True)
    assert drop.counts["pairs"] == without.counts["pairs"] != keep.counts["pairs"]


@pytest.mark.django_db
def test_without_a_report_nobody_is_flagged_and_the_record_says_so(simulated):
    project, _ = simulated
    snap = snapshot_build(project=project, policy=PairPolicy(flagged_weight=0.5), test_fraction=0)
    assert snap.policy["flagged_annotators"] == []
