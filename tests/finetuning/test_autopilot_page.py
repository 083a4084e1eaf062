"""The autopilot on the loop page: its state, settings form (the API's checker), pause and
resume, and a run's steps with links to their jobs and the gate's decision."""

import pytest
from django.urls import reverse

from feedback_app.core.models import AuditEvent, Job
from feedback_app.finetuning.models import Autopilot, AutopilotRun, AutopilotStep

pytestmark = pytest.mark.django_db

FORM = {"enabled": "on", "trigger": "share", "trigger_share": "0.8", "trigger_rankings": "10",
        "stage": "kto", "min_win_rate_low": "0.55", "max_kl": "3", "min_reward_accuracy": "0.6",
        "head_to_head_share": "0.5", "max_failed_gates": "2",
        "step_params": '{"policy": {"beta": 0.2}}'}  # fmt: skip


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("boss", is_staff=True))
    return client


def loop(client, project) -> str:
    return client.get(reverse("finetuning:loop", args=[project.pk])).content.decode()


def test_the_loop_page_shows_the_autopilot_off_with_its_settings(admin_client, loop_project):
    project, _ = loop_project
    body = loop(admin_client, project)
    assert 'data-testid="autopilot-state">off<' in body
    assert 'name="min_win_rate_low"' in body and 'data-testid="autopilot-save"' in body


def test_settings_saved_from_the_page_are_checked_by_the_same_rules(admin_client, loop_project):
    project, _ = loop_project
    url = reverse("finetuning:autopilot", args=[project.pk])
    response = admin_client.post(url, FORM)
    assert response.status_code == 302
    pilot = Autopilot.objects.get()
    assert pilot.enabled and pilot.stage == "kto" and pilot.step_params == {"policy": {"beta": 0.2}}
    assert pilot.max_failed_gates == 2
    assert AuditEvent.objects.filter(action="autopilot.update", via="page").exists()
    assert 'data-testid="autopilot-state">waiting<' in loop(admin_client, project)


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"trigger_share": "1.5"}, "trigger_share", "trigger_share: must be"),
        ({"step_params": "{nope"}, "step_params", "not valid JSON"),
        ({"max_failed_gates": "-1"}, "max_failed_gates", "max_failed_gates: must be an integer"),
        ({"max_failed_gates": "1001"}, "max_failed_gates", "in [0, 1000]"),
        ({"max_failed_gates": "1.5"}, "max_failed_gates", "Enter a whole number"),
        ({"max_failed_gates": "x"}, "max_failed_gates", "Enter a whole number"),
        ({"step_params": '{"policy": {"beta": 0}}'}, "step_params", "step_params.policy.beta"),
    ],
)
def test_bad_settings_come_back_on_their_field(admin_client, loop_project, change, field, text):
    project, _ = loop_project
    response = admin_client.post(
        reverse("finetuning:autopilot", args=[project.pk]), {**FORM, **change}
    )
    assert response.status_code == 400
    assert text in str(response.context["autopilot_form"].errors[field])
    assert not Autopilot.objects.exists()


def test_the_form_shows_and_saves_max_failed_gates(admin_client, loop_project):
    project, _ = loop_project
    body = loop(admin_client, project)
    assert 'name="max_failed_gates" value="3"' in body  # the default
    url = reverse("finetuning:autopilot", args=[project.pk])
    assert admin_client.post(url, {**FORM, "max_failed_gates": "0"}).status_code == 302
    assert Autopilot.objects.get().max_failed_gates == 0
    assert 'name="max_failed_gates" value="0"' in loop(admin_client, project)


def test_a_pause_for_failed_gates_shows_its_reason_and_resume_clears_it(admin_client, loop_project):
    project, _ = loop_project
    reason = "3 gates failed in a row (runs 1-3): no policy was promoted"
    Autopilot.objects.create(project=project, enabled=True, paused=True, pause_reason=reason)
    body = loop(admin_client, project)
    assert 'data-testid="autopilot-state">paused<' in body and reason in body
    assert 'data-testid="autopilot-resume"' in body
    admin_client.post(reverse("finetuning:autopilot-pause", args=[project.pk, "resume"]))
    pilot = Autopilot.objects.get()
    assert not pilot.paused and pilot.pause_reason == "" and pilot.resumed_at is not None
    assert reason not in loop(admin_client, project)


def test_pause_and_resume_from_the_page(admin_client, loop_project):
    project, _ = loop_project
    Autopilot.objects.create(project=project, enabled=True)
    pause = reverse("finetuning:autopilot-pause", args=[project.pk, "pause"])
    assert admin_client.post(pause).status_code == 302
    assert Autopilot.objects.get().paused
    assert 'data-testid="autopilot-resume"' in loop(admin_client, project)
    admin_client.post(reverse("finetuning:autopilot-pause", args=[project.pk, "resume"]))
    assert not Autopilot.objects.get().paused
    bogus = reverse("finetuning:autopilot-pause", args=[project.pk, "explode"])
    assert admin_client.post(bogus).status_code == 404


def test_a_stopped_run_shows_its_reason_steps_jobs_and_gate(admin_client, loop_project):
    project, _ = loop_project
    Autopilot.objects.create(project=project, enabled=True, paused=True)
    job = Job.objects.create(project=project, kind="promote", status="failed", error="boom")
    gate = {
        "passed": True, "reason": "passed", "reasons": [],
        "inputs": {"win_rate": 0.8, "win_rate_low": 0.61, "kl": 0.3, "reward_accuracy": 0.9},
        "thresholds": {"min_win_rate_low": 0.5, "max_kl": 1.0, "min_reward_accuracy": 0.6},
    }  # fmt: skip
    run = AutopilotRun.objects.create(
        project=project, number=1, round=1, state="stopped", step="promote", gate=gate,
        config={"stage": "dpo"}, stop_reason=f"Promote: job #{job.pk} failed: boom",
    )  # fmt: skip
    AutopilotStep.objects.create(run=run, name="promote", job=job)
    body = loop(admin_client, project)
    assert 'data-testid="autopilot-state">stopped<' in body
    assert f"Promote: job #{job.pk} failed: boom" in body
    assert reverse("finetuning:job", args=[job.pk]) in body
    assert 'data-testid="gate"' in body and "0.610" in body
    assert "Resume (retry the failed step)" in body
    assert 'data-testid="gate-reward-parts"' not in body  # a gate recorded before the parts
    gate["inputs"].update(
        reward_accuracy=0.74,
        reward_accuracy_random=0.8,
        reward_pairs_random=200,
        reward_accuracy_gold=0.5,
        reward_pairs_gold=50,
    )
    AutopilotRun.objects.filter(pk=run.pk).update(gate=gate)
    body = loop(admin_client, project)
    assert "(random pairs 0.800 on 200; gold pairs 0.500 on 50)" in body


def test_the_autopilot_is_for_admins_only(client, loop_project, alice):
    project, _ = loop_project
    client.force_login(alice)
    assert client.post(reverse("finetuning:autopilot", args=[project.pk]), FORM).status_code == 404
    pause = reverse("finetuning:autopilot-pause", args=[project.pk, "pause"])
    assert client.post(pause).status_code == 404
    assert not Autopilot.objects.exists()


def test_hostile_form_values_are_400s_on_their_field_and_store_nothing(admin_client, loop_project):
    from tests.hostile import TEXT_EXAMPLES

    project, _ = loop_project
    url = reverse("finetuning:autopilot", args=[project.pk])
    places = ["trigger_share", "trigger_rankings", "max_kl", "head_to_head_share", "stage"]
    for field in places:
        for value in TEXT_EXAMPLES:
            response = admin_client.post(url, {**FORM, field: value})
            assert response.status_code == 400, (field, value)
            assert response.context["autopilot_form"].errors, (field, value)
    for value in ['{"policy": {"beta": "a\\u0000b"}}', '{"policy": {"x\\ud800": 1}}',
                  '{"generate": {"seed": 1e400}}', "[" * 5000 + "]" * 5000]:  # fmt: skip
        response = admin_client.post(url, {**FORM, "step_params": value})
        assert response.status_code == 400, value
        assert response.context["autopilot_form"].errors["step_params"], value
    assert not Autopilot.objects.exists()


def test_a_steps_job_page_names_its_run_and_so_does_its_retry(admin_client, loop_project):
    from feedback_app.finetuning import services

    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset", status="failed", error="x")
    run = AutopilotRun.objects.create(project=project, number=4, round=1, config={"stage": "dpo"})
    AutopilotStep.objects.create(run=run, name="snapshot", job=job)
    retry = services.job_retry(job=job)
    for shown in (job, retry):
        body = admin_client.get(reverse("finetuning:job", args=[shown.pk])).content.decode()
        assert "autopilot run 4" in body and "Build the pairs snapshot" in body
    other = Job.objects.create(project=project, kind="build_dataset")
    body = admin_client.get(reverse("finetuning:job", args=[other.pk])).content.decode()
    assert 'data-testid="autopilot-step"' not in body


def test_a_get_on_the_autopilot_form_action_is_a_405_page_saying_use_post(
    admin_client, loop_project
):
    """Was an empty 405 (require_POST): now a page in words, the Allow header kept."""
    project, _ = loop_project
    for url in (
        reverse("finetuning:autopilot", args=[project.pk]),
        reverse("finetuning:autopilot-pause", args=[project.pk, "pause"]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 405 and response["Allow"] == "POST", url
        assert response["Content-Type"].startswith("text/html")
        body = response.content.decode()
        assert "GET is not taken here; this address takes POST" in body, body
        assert 'data-testid="errors"' in body or 'role="alert"' in body
