"""The people's head-to-head verdict (finetuning/human.py), the fixed evaluation set's rules
(finetuning/evalset.py) and the length-controlled win rate (training/stats.py): pure rules."""

import doctest

import pytest

from feedback_app.finetuning import evalset, human
from feedback_app.finetuning.human import HumanWinRate, human_verdict, human_win_rate
from feedback_app.preferences.dataset import in_eval_set
from training import stats
from training.stats import length_controlled_win_rate

SIDE = {1: "new", 2: "parent", 3: "new", 4: "parent"}


def test_a_ranking_counts_once_whatever_its_number_of_comparisons():
    rate = human_win_rate([[[1, 3], [2, 4]], [[2], [1]]], SIDE)  # 4 wins, then 1 loss
    assert rate.rankings == 2 and rate.win_rate == 0.5


def test_ties_are_left_out_so_they_do_not_pull_the_verdict_towards_even():
    # The parent wins every comparison people decided; 30 rankings saw no difference at all.
    rankings = [[[2], [1]]] * 10 + [[[1, 2]]] * 30 + [[[2], [1, 3]]] * 5
    rate = human_win_rate(rankings, {1: "new", 2: "parent", 3: "new"})
    assert (rate.win_rate, rate.rankings) == (0.0, 15)
    assert human_verdict(rate, margin=0.1) == "rolled back"


def test_rankings_without_both_policies_are_left_out():
    assert human_win_rate([[[1], [3]]], SIDE).rankings == 0


def test_people_preferring_the_parent_roll_the_promotion_back():
    parent_wins = [[[2], [1]]] * 30 + [[[1], [2]]] * 10
    rate = human_win_rate(parent_wins, SIDE)
    assert human_verdict(rate, margin=0.1) == "rolled back"


def test_a_clearly_not_worse_policy_is_confirmed_and_no_rankings_leave_it_pending():
    rate = human_win_rate([[[1], [2]]] * 30 + [[[2], [1]]] * 25, SIDE)
    assert human_verdict(rate, margin=0.1) == "confirmed"
    assert human_verdict(HumanWinRate(None, 0, 1, 0), margin=0.1) == "pending"
    assert human_verdict(HumanWinRate(0.5, 0.1, 0.9, 2), margin=0.1) == "unclear"


def test_an_even_head_to_head_just_under_half_is_not_a_rollback():
    # 148 rankings at 0.49 [0.41, 0.57] (the rounds bench's first run rolled this back): not
    # clearly worse, and within the margin people tolerate.
    assert human_verdict(HumanWinRate(0.49, 0.41, 0.57, 148), margin=0.1) == "confirmed"
    assert human_verdict(HumanWinRate(0.45, 0.2, 0.7, 12), margin=0.1) == "unclear"
    assert human_verdict(HumanWinRate(0.45, 0.41, 0.49, 600), margin=0.1) == "rolled back"


def test_the_evaluation_set_is_a_fixed_fifth_of_prompts_whatever_the_seed():
    hashes = [f"{i:064x}" for i in range(2000)]
    share = sum(in_eval_set(h) for h in hashes) / len(hashes)
    assert 0.17 < share < 0.23
    assert [in_eval_set(h) for h in hashes] == [in_eval_set(h) for h in hashes]


def test_a_length_only_win_is_not_a_length_controlled_win():
    outcomes = [1.0] * 20 + [0.0] * 20
    longer = [10.0] * 20 + [-10.0] * 20  # every win is the longer answer
    assert length_controlled_win_rate(outcomes, longer) < 0.6
    assert length_controlled_win_rate(outcomes, [0.0] * 40) == 0.5


def test_doctests():
    for module in (human, evalset, stats):
        assert doctest.testmod(module).failed == 0


@pytest.mark.django_db
def test_the_reward_step_starts_from_the_lineages_base_not_the_newest_policy(make_project):
    from feedback_app.core.models import Job
    from feedback_app.finetuning import versions
    from feedback_app.finetuning.autopilot.steps import REWARD, SNAPSHOT, step_params
    from feedback_app.finetuning.models import AutopilotRun, AutopilotStep

    project = make_project(name="rm-base")
    base = versions.model_register(project=project, kind="policy", name="base", weights="b")
    child = versions.model_register(
        project=project, kind="policy", name="child", weights="c", parent=base
    )
    run = AutopilotRun.objects.create(project=project, number=2, round=2, config={}, parent=child)
    job = Job.objects.create(project=project, kind="build_dataset", outputs={"snapshot": 7})
    AutopilotStep.objects.create(run=run, name=SNAPSHOT, job=job)
    assert step_params(run, REWARD)["base"] == base.pk
