"""The guided loop on the pages: next step first, launchers under advanced, the job page's
next step and readable results, the promote confirmation, the autopilot switch, the top bar."""

import pytest
from django.urls import reverse

from feedback_app.core.models import DatasetSnapshot, Job, ModelVersion
from feedback_app.finetuning import versions

pytestmark = pytest.mark.django_db

LOST = {"win_rate": 0.3, "win_rate_low": 0.15, "win_rate_high": 0.48, "kl_to_parent": -0.059}


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("boss", is_staff=True))
    return client


def _loop(client, project) -> str:
    return client.get(reverse("finetuning:loop", args=[project.pk])).content.decode()


def _child(project, base, metrics, name="policy-7"):
    return versions.model_register(
        project=project, kind="policy", name=name, stage="dpo", weights="/x", parent=base,
        metrics=metrics, activate_if_first=False,
    )  # fmt: skip


def test_loop_page_recommends_ranking_first_and_keeps_the_other_launchers_under_advanced(
    admin_client, loop_project
):
    project, _ = loop_project
    body = _loop(admin_client, project)
    next_card = body[body.index('data-testid="next-step"') : body.index('data-testid="autopilot"')]
    assert 'aria-current="step"' in next_card and 'data-step="rank"' in next_card
    assert reverse("annotation:annotate", args=[project.pk]) in next_card
    advanced = body[body.index('data-testid="advanced"') :]
    for kind in ("generate", "build_dataset", "train_reward", "train_dpo", "evaluate"):
        assert f'data-testid="start-{kind}"' in advanced


def test_after_a_snapshot_the_reward_model_launcher_comes_first_and_not_twice(
    admin_client, loop_project, make_snapshot
):
    project, _ = loop_project
    make_snapshot(project)
    body = _loop(admin_client, project)
    next_card = body[body.index('data-testid="next-step"') : body.index('data-testid="autopilot"')]
    assert 'data-testid="start-train_reward"' in next_card
    assert body.count('data-testid="start-train_reward"') == 1


def test_a_succeeded_jobs_page_offers_the_next_step_and_shows_counts_not_json(
    admin_client, loop_project
):
    project, _ = loop_project
    job = Job.objects.create(
        project=project, kind="build_dataset", status="succeeded",
        outputs={"snapshot": 1, "rankings": 6, "candidate_pairs": 18, "pairs": 12, "train": 10,
                 "test": 2},
    )  # fmt: skip
    body = admin_client.get(reverse("finetuning:job", args=[job.pk])).content.decode()
    assert 'data-testid="job-next"' in body and 'data-testid="next-action"' in body
    counts = body[body.index('data-testid="snapshot-counts"') :]
    assert "<th>Rankings</th>" in counts and "<td>12</td>" in counts and "<td>2</td>" in counts
    running = Job.objects.create(project=project, kind="build_dataset", status="running")
    body = admin_client.get(reverse("finetuning:job", args=[running.pk])).content.decode()
    assert 'data-testid="job-next"' not in body


def test_an_evaluations_page_gives_win_rate_interval_verdict_kl_examples_and_the_version(
    admin_client, loop_project
):
    project, base = loop_project
    child = _child(project, base, LOST)
    job = Job.objects.create(
        project=project, kind="evaluate", status="succeeded", params={"policy": child.pk},
        outputs={**LOST, "kl_to_parent_stderr": 0.03, "comparisons": 16, "judge": "reward-3",
                 "examples": [{"prompt": "Say hi", "policy": "Hello!", "parent": "Bye."}]},
    )  # fmt: skip
    body = admin_client.get(reverse("finetuning:job", args=[job.pk])).content.decode()
    assert 'data-testid="verdict"' in body and ">worse<" in body
    assert "0.15–0.48" in body and 'data-testid="kl">0.00 ± 0.06<' in body  # not -0.059
    assert "Hello!" in body and "Bye." in body
    assert "policy-7 · DPO" in body  # the version it evaluated, linked


def test_promoting_a_version_that_lost_asks_for_a_confirmation_the_server_requires(
    admin_client, loop_project
):
    project, base = loop_project
    child = _child(project, base, LOST)
    url = reverse("finetuning:promote", args=[project.pk, child.pk])
    body = admin_client.post(url).content.decode()
    assert 'data-testid="promote-confirm"' in body and "lost to its parent" in body
    assert not ModelVersion.objects.get(pk=child.pk).is_active
    assert admin_client.post(url, {"confirm": "1"}).status_code == 302
    assert ModelVersion.objects.get(pk=child.pk).is_active


def test_the_models_page_names_versions_one_way_and_never_shows_a_bare_negative_kl(
    admin_client, loop_project
):
    project, base = loop_project
    _child(project, base, LOST)
    body = admin_client.get(reverse("finetuning:models", args=[project.pk])).content.decode()
    assert "policy-7 · DPO" in body and "base · Base" not in body
    assert "-0.059" not in body and "noise" in body


def test_the_autopilot_switch_sits_beside_its_state_and_turns_it_on(admin_client, loop_project):
    project, _ = loop_project
    body = _loop(admin_client, project)
    card = body[
        body.index('data-testid="autopilot"') : body.index('data-testid="autopilot-settings"')
    ]
    assert 'data-testid="autopilot-switch"' in card and 'aria-checked="false"' in card
    admin_client.post(reverse("finetuning:autopilot-pause", args=[project.pk, "on"]))
    assert 'aria-checked="true"' in _loop(admin_client, project)


def test_the_autopilot_says_before_a_run_when_the_gate_cannot_pass_at_this_sample_size(
    admin_client, loop_project
):
    project, _ = loop_project  # three prompts: three comparisons at most
    body = _loop(admin_client, project)
    assert "cannot pass at this sample size" in body and "3 comparisons" in body


def test_the_top_bar_counts_running_jobs_for_admins_and_links_them(
    admin_client, client, loop_project, alice
):
    project, _ = loop_project
    Job.objects.create(project=project, kind="build_dataset", status="running")
    body = _loop(admin_client, project)
    assert 'data-testid="jobs-running"' in body and "1 job running" in body
    listed = admin_client.get(reverse("finetuning:jobs")).content.decode()
    assert reverse("finetuning:loop", args=[project.pk]) in listed
    client.force_login(alice)  # an annotator: no count
    assert 'data-testid="jobs-running"' not in client.get("/").content.decode()


def test_a_snapshot_newer_than_the_reward_model_asks_for_a_new_reward_model(
    admin_client, loop_project, make_snapshot
):
    project, _ = loop_project
    first = make_snapshot(project)
    versions.model_register(
        project=project, kind="reward", name="reward-1", stage="reward", weights="/r",
        snapshot=first,
    )  # fmt: skip
    body = _loop(admin_client, project)
    assert 'data-step="policy" aria-current="step"' in body.replace('class="current" ', "")
    make_snapshot(project)
    assert DatasetSnapshot.objects.count() == 2
    body = _loop(admin_client, project)
    assert 'data-step="reward" aria-current="step"' in body.replace('class="current" ', "")
