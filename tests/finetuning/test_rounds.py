"""Rounds: the next round's prompts chosen by the project's rule, recorded with the round; the
evaluation against the base; and the rounds report (selector, page, API)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from feedback_app.annotation.importing import check_records
from feedback_app.annotation.models import Ranking, Task
from feedback_app.annotation.services import prompts_import
from feedback_app.common.errors import InvalidInput
from feedback_app.core.models import ModelVersion, Project
from feedback_app.finetuning import jobs, kinds, services, versions
from feedback_app.finetuning.evalset import eval_set_prompts
from feedback_app.finetuning.models import Round
from feedback_app.finetuning.rounds_report import rounds_report

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiny_reward_model(tiny_policy, tmp_path_factory) -> str:
    """The tiny base with a seeded, untrained score head: a reward model whose scores differ
    between candidates, which is all selection needs."""
    import torch

    from training.reward import load_reward_model

    torch.manual_seed(0)
    model, tokenizer = load_reward_model(tiny_policy, train=False)
    out = tmp_path_factory.mktemp("reward")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.fixture
def pool_project(tiny_policy):
    project = Project.objects.create(name="pool", candidates_per_task=3)
    records = check_records([(i + 1, {"prompt": f"Tell me about item {i}"}) for i in range(8)], k=3)
    prompts_import(project=project, records=records)
    base = versions.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    return project, base


def _generate(project, base, **params):
    job = services.job_launch(
        project=project,
        kind="generate",
        params={"model_versions": [base.pk], "max_new_tokens": 6, **params},
    )
    status = jobs.job_execute(
        job_id=job.pk, worker="w", runners=kinds.RUNNERS, torch_kinds=kinds.TORCH_KINDS
    )
    job.refresh_from_db()
    assert status == "succeeded", job.error
    return job


def test_active_selection_keeps_the_prompts_where_the_reward_model_is_least_sure(
    pool_project, tiny_reward_model
):
    from training.reward import RewardScorer
    from training.selection import top_gap

    project, base = pool_project
    project.active_selection = True
    project.save()
    reward = versions.model_register(
        project=project, kind="reward", name="rm", weights=tiny_reward_model
    )
    _generate(project, base, round_size=3)

    rnd = Round.objects.get(project=project)
    sel = rnd.selection
    held = len(eval_set_prompts(project=project))  # drawn at random beside the rule's pick
    assert sel["rule"] == "reward_margin" and sel["reward_model"] == reward.pk
    assert sel["pool_size"] == 8 - held and len(sel["chosen"]) == 3 - len(sel["eval_set"])
    assert not set(sel["chosen"]) & {p.pk for p in eval_set_prompts(project=project)}
    tasks = Task.objects.filter(project=project, round=rnd.number)
    assert sorted(t.prompt_id for t in tasks) == sorted(sel["chosen"] + sel["eval_set"])
    # The stored candidates, scored again, give the recorded gaps; and they are the pool's
    # smallest three (below the pool's median of eight).
    scorer = RewardScorer(tiny_reward_model)
    for pid, gap in zip(sel["chosen"], sel["chosen_gaps"], strict=True):
        task = tasks.get(prompt_id=pid)
        texts = [c.text for c in task.candidates.order_by("position")]
        scores = scorer.score_completions([task.prompt.text] * len(texts), texts)
        assert top_gap(scores) == pytest.approx(gap, abs=1e-4)
    assert sel["chosen_gap"]["max"] <= sel["pool_gap"]["median"]
    assert sel["chosen_gap"]["mean"] < sel["pool_gap"]["mean"]


def test_without_active_selection_a_round_is_a_seeded_draw_of_prompts_not_asked_before(
    pool_project,
):
    project, base = pool_project
    first = _generate(project, base, round_size=3, seed=5)
    second = _generate(project, base, round_size=3, seed=5)
    r1, r2 = Round.objects.filter(project=project).order_by("number")
    assert r1.selection["rule"] == r2.selection["rule"] == "random"
    held = len(eval_set_prompts(project=project))
    asked = len(r1.selection["chosen"])
    assert r1.selection["pool_size"] == 8 - held and r2.selection["pool_size"] == 8 - held - asked
    assert not set(r1.selection["chosen"]) & set(r2.selection["chosen"])
    assert first.outputs["tasks"] == second.outputs["tasks"] == 3


def test_active_selection_without_a_reward_model_draws_at_random_and_says_why(pool_project):
    project, base = pool_project
    project.active_selection = True
    project.save()
    _generate(project, base, round_size=2)
    selection = Round.objects.get(project=project).selection
    assert selection["rule"] == "random" and selection["note"] == "no active reward model yet"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"pool_size": 4}, "pool_size"), ({"round_size": 4, "pool_size": 2}, "pool_size"),
     ({"round_size": 0}, "round_size")],
)  # fmt: skip
def test_bad_round_sizes_are_refused_naming_the_field(loop_project, params, field):
    project, base = loop_project
    with pytest.raises(InvalidInput) as exc:
        services.job_launch(
            project=project, kind="generate", params={"model_versions": [base.pk], **params}
        )
    assert exc.value.problems[0].field == field


def test_evaluating_a_grandchild_compares_it_with_the_base_too(
    loop_project, tiny_policy, tiny_reward_model
):
    from feedback_app.finetuning.reporting import JobReporter
    from feedback_app.finetuning.runners import policy_evaluate
    from training.config import EvalConfig

    project, _ = loop_project
    base = versions.model_register(project=project, kind="policy", name="b", weights=tiny_policy)
    child = versions.model_register(
        project=project, kind="policy", name="c", weights=tiny_policy, parent=base
    )
    grandchild = versions.model_register(
        project=project, kind="policy", name="g", weights=tiny_policy, parent=child
    )
    reward = versions.model_register(
        project=project, kind="reward", name="rm", weights=tiny_reward_model
    )
    job = services.job_launch(project=project, kind="build_dataset", params={})
    with JobReporter(job.pk) as reporter:
        policy_evaluate(
            policy=grandchild,
            reward=reward,
            prompts=["Tell me", "Say"],
            config=EvalConfig(max_new_tokens=4, samples_per_prompt=1),
            reporter=reporter,
        )
    metrics = ModelVersion.objects.get(pk=grandchild.pk).metrics
    assert metrics["base"] == base.pk
    assert 0 <= metrics["win_rate_vs_base"] <= 1 and metrics["kl_to_base"] is not None
    assert versions.lineage_root(grandchild) == base


@pytest.fixture
def two_rounds(make_project, make_user):
    """Two rounds by hand: round 1 from the base, round 2 from a DPO child evaluated against
    parent and base; a reward model trained after each round; rankings on both."""
    from feedback_app.annotation import handout, submit

    users = [make_user(f"r{i}") for i in range(2)]
    project = make_project(name="rounds", k=2, overlap=2, n_tasks=2, annotators=users)
    base = versions.model_register(project=project, kind="policy", name="base", weights="b")
    r1 = Round.objects.create(project=project, number=1, selection={"rule": "all"})
    r1.model_versions.set([base])
    rm1 = versions.model_register(
        project=project, kind="reward", name="rm1", weights="r1", metrics={"heldout_accuracy": 0.6}
    )
    child = versions.model_register(
        project=project,
        kind="policy",
        name="dpo",
        weights="c",
        parent=base,
        metrics={"win_rate": 0.7, "win_rate_vs_base": 0.7, "kl_to_base": 1.5},
    )
    r2 = Round.objects.create(
        project=project, number=2, selection={"rule": "reward_margin", "pool_size": 9}
    )
    r2.model_versions.set([child])
    versions.model_register(
        project=project, kind="reward", name="rm2", weights="r2", metrics={"heldout_accuracy": 0.8}
    )
    _, task2 = project.tasks.order_by("id")
    Task.objects.filter(pk=task2.pk).update(round=2)
    for flip in (False, True):
        for i, user in enumerate(users):
            a = handout.task_assign_next(project=project, annotator=user)
            ids = sorted(a.display_order)
            order = list(reversed(ids)) if flip and i else ids
            submit.ranking_submit(task_id=a.task_id, annotator=user, groups=[[x] for x in order])
    assert Ranking.objects.count() == 4
    return project, rm1


def test_the_rounds_report_gives_each_rounds_rankings_agreement_policy_and_reward_model(
    two_rounds,
):
    project, rm1 = two_rounds
    with CaptureQueriesContext(connection) as queries:
        one, two = rounds_report(project=project)
    assert len(queries) == 5
    assert (one.number, one.rankings, one.agreement, one.tasks) == (1, 2, 1.0, 1)
    assert (one.win_rate_vs_base, one.kl_to_base) == (0.5, 0.0)  # the base against itself
    assert (one.reward_model_name, one.reward_accuracy) == ("rm1", 0.6)
    assert (two.rankings, two.agreement, two.selection_rule, two.selection_pool) == (
        2, 0.0, "reward_margin", 9,
    )  # fmt: skip
    assert (two.win_rate_vs_parent, two.win_rate_vs_base, two.kl_to_base) == (0.7, 0.7, 1.5)
    assert (two.reward_model_name, two.reward_accuracy) == ("rm2", 0.8)


def test_the_rounds_page_and_api_show_the_figures_to_admins(two_rounds, make_user, client):
    from rest_framework.test import APIClient

    from feedback_app.core.models import Membership

    project, _ = two_rounds
    admin = make_user("boss")
    Membership.objects.create(project=project, user=admin, role="admin")
    client.force_login(admin)
    page = client.get(f"/projects/{project.pk}/rounds/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('data-testid="round"') == 2 and html.count('data-testid="chart"') == 6
    api = APIClient()
    api.force_authenticate(admin)
    body = api.get(f"/api/v1/projects/{project.pk}/rounds/").json()
    assert [r["number"] for r in body] == [1, 2] and body[1]["reward_accuracy"] == 0.8


def test_the_rounds_page_is_not_found_for_an_annotator(two_rounds, client):
    project, _ = two_rounds
    client.force_login(project.members.first())
    assert client.get(f"/projects/{project.pk}/rounds/").status_code == 404


def test_pairs_with_an_empty_or_identical_side_are_left_out_of_training_not_fatal(
    make_project, make_snapshot, tiny_policy
):
    """Generated candidates can be empty or repeat another; five rounds of the bench met both."""
    project = make_project(name="empty", k=2, overlap=1, n_tasks=1)
    base = versions.model_register(project=project, kind="policy", name="b", weights=tiny_policy)
    good = [
        {"prompt": f"Say {i}", "chosen": " valid and useful", "rejected": " error"}
        for i in range(8)
    ]
    bad = [
        {"prompt": "Say", "chosen": " fine", "rejected": ""},
        {"prompt": "Say", "chosen": " same", "rejected": " same"},
    ]
    snapshot = make_snapshot(project, pairs=good + bad)
    job = services.job_launch(
        project=project,
        kind="train_reward",
        params={"snapshot": snapshot.pk, "base": base.pk, "epochs": 1},
    )
    status = jobs.job_execute(
        job_id=job.pk, worker="w", runners=kinds.RUNNERS, torch_kinds=kinds.TORCH_KINDS
    )
    job.refresh_from_db()
    assert status == "succeeded", job.error
    assert "2 pairs with an empty or identical side left out" in job.log_tail


def test_a_head_to_head_round_shows_the_peoples_win_rate_beside_the_model_judged_one(
    two_rounds, make_user, client
):
    from rest_framework.test import APIClient

    from feedback_app.annotation.models import Candidate
    from feedback_app.core.models import Membership
    from feedback_app.finetuning.models import AutopilotRun

    project, _ = two_rounds
    base, child = ModelVersion.objects.filter(project=project, kind="policy").order_by("id")
    Round.objects.get(project=project, number=2).model_versions.add(base)
    low, high = Candidate.objects.filter(task__round=2).order_by("id")
    Candidate.objects.filter(pk=low.pk).update(model_version=child)
    Candidate.objects.filter(pk=high.pk).update(model_version=base)
    AutopilotRun.objects.create(
        project=project, number=1, round=1, next_round=2, promoted=True, parent=base,
        policy=child, human={"verdict": "unclear"},
    )  # fmt: skip
    one, two = rounds_report(project=project)
    assert one.human_win_rate is None and one.human_rankings == 0
    # Two rankings of round 2: one puts the child first, the other the base.
    assert (two.win_rate_vs_parent, two.human_win_rate, two.human_rankings) == (0.7, 0.5, 2)
    assert two.human_low < 0.5 < two.human_high and two.human_verdict == "unclear"

    admin = make_user("boss")
    Membership.objects.create(project=project, user=admin, role="admin")
    client.force_login(admin)
    html = client.get(f"/projects/{project.pk}/rounds/").content.decode()
    assert "2 rankings): unclear" in html and 'data-series="people (head-to-head)"' in html
    api = APIClient()
    api.force_authenticate(admin)
    body = api.get(f"/api/v1/projects/{project.pk}/rounds/").json()
    assert body[0]["human_win_rate"] is None
    assert (body[1]["human_win_rate"], body[1]["human_rankings"]) == (0.5, 2)
    assert body[1]["human_verdict"] == "unclear" and body[1]["win_rate_vs_parent"] == 0.7


def test_the_reward_model_is_scored_on_the_gold_pairs_apart_from_the_random_yardstick(
    make_project, make_snapshot, tiny_policy
):
    """test.jsonl: the yardstick's rows, then the gold tasks' pairs, then the random split."""
    from pathlib import Path

    from training.data import write_jsonl

    project = make_project(name="gold-yard", k=2, overlap=1, n_tasks=1)
    base = versions.model_register(project=project, kind="policy", name="b", weights=tiny_policy)
    row = lambda i: {"prompt": f"Say {i}", "chosen": " valid", "rejected": " error"}  # noqa: E731
    snapshot = make_snapshot(project, pairs=[row(i) for i in range(8)])
    write_jsonl(Path(snapshot.path) / "test.jsonl", [row(i) for i in range(10, 16)])
    snapshot.counts = {**snapshot.counts, "test": 6, "yardstick": 2, "gold": 3}
    snapshot.save()
    job = services.job_launch(
        project=project,
        kind="train_reward",
        params={"snapshot": snapshot.pk, "base": base.pk, "epochs": 1},
    )
    jobs.job_execute(
        job_id=job.pk, worker="w", runners=kinds.RUNNERS, torch_kinds=kinds.TORCH_KINDS
    )
    job.refresh_from_db()
    m = job.outputs["metrics"]
    assert (m["yardstick_pairs"], m["gold_pairs"], m["heldout_pairs"]) == (2, 3, 3)
    assert 0 <= m["gold_accuracy"] <= 1


def test_a_training_step_records_its_snapshots_pairs_by_round_and_recency_weights(
    make_project, make_snapshot
):
    from feedback_app.finetuning.runners.common import data_used

    project = make_project(name="data-used", k=2, overlap=1, n_tasks=1)
    snapshot = make_snapshot(project)
    assert "data_pairs_by_round" not in data_used(snapshot, 1)  # built before the counts
    snapshot.counts = {
        **snapshot.counts,
        "rounds": {"1": 30, "2": 10},
        "recency_rows": {"1": 16, "2": 24},
    }
    snapshot.policy = {
        "recency": {"half_life": 1.0, "newest_round": 2, "weights": {"1": 0.5, "2": 1.0}}
    }
    snapshot.save()
    used = data_used(snapshot, 40)
    assert used["data_pairs_by_round"] == {"1": 30, "2": 10}
    assert used["data_recency"]["weights"] == {"1": 0.5, "2": 1.0}
    assert used["data_recency"]["rows"] == {"1": 16, "2": 24}
