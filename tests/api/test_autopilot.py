"""The autopilot's API: GET and PUT of its settings and state, the list of its runs, refusals that
name the field (hostile values included), and the audit record of a change."""

from __future__ import annotations

import pytest

from feedback_app.core.models import AuditEvent
from feedback_app.finetuning import autopilot
from feedback_app.finetuning.models import Autopilot, AutopilotRun, AutopilotStep
from tests.api.test_invalid_input import everything, post_json, refused
from tests.hostile import BODY_EXAMPLES, EXAMPLES, every_case, hostile

pytestmark = pytest.mark.django_db


def url(world) -> str:
    return f"/api/v1/projects/{world.project_a.pk}/autopilot/"


def test_it_is_off_by_default_and_says_so(world):
    body = world.client("dave").get(url(world)).json()
    assert body["enabled"] is False and body["paused"] is False and body["state"] == "off"
    assert body["stage"] == "dpo" and body["step_params"] == {} and body["run"] is None
    assert set(body["open_round"]) == {"round", "rankings", "tasks", "tasks_done"}
    assert not Autopilot.objects.exists()  # reading makes no row


def test_put_changes_only_what_it_sends_and_is_audited(world):
    client = world.client("dave")
    sent = {"trigger": "rankings", "trigger_rankings": 50, "min_win_rate_low": 0.55,
            "step_params": {"policy": {"beta": 0.2}}}  # fmt: skip
    body = client.put(url(world), sent, format="json").json()
    assert {k: body[k] for k in sent} == sent
    assert body["max_kl"] == 20.0 and body["enabled"] is False  # untouched defaults
    again = client.put(url(world), {"max_kl": 2}, format="json").json()
    assert again["max_kl"] == 2.0 and again["trigger_rankings"] == 50
    event = AuditEvent.objects.filter(action="autopilot.update").order_by("id").last()
    assert event.data == {"changed": ["max_kl"]}
    assert event.actor == world.dave and event.via == "api" and event.project == world.project_a


def test_put_max_failed_gates_is_stored_and_returned(world):
    client = world.client("dave")
    assert client.get(url(world)).json()["max_failed_gates"] == 3
    for value in (5, 0):
        body = client.put(url(world), {"max_failed_gates": value}, format="json").json()
        assert body["max_failed_gates"] == value
        assert Autopilot.objects.get().max_failed_gates == value


def test_a_bad_max_failed_gates_is_a_400_naming_it(world):
    client = world.client("dave")
    for value in (-1, 1.5, "x", 1001, True, None):
        response = client.put(url(world), {"max_failed_gates": value}, format="json")
        assert response.status_code == 400, value
        error = response.json()["errors"][0]
        assert error["field"] == "max_failed_gates", value
        assert "an integer in [0, 1000]" in error["message"], value
    assert not Autopilot.objects.exists()


def test_pause_reason_is_shown_and_read_only(world):
    client = world.client("dave")
    assert client.get(url(world)).json()["pause_reason"] == ""
    reason = "3 gates failed in a row (runs 1-3): no policy was promoted"
    Autopilot.objects.create(project=world.project_a, enabled=True, paused=True,
                             pause_reason=reason)  # fmt: skip
    body = client.get(url(world)).json()
    assert body["pause_reason"] == reason
    assert body["state"] == "paused" and body["detail"] == f"Paused: {reason}"
    response = client.put(url(world), {"pause_reason": ""}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "pause_reason"
    assert Autopilot.objects.get().pause_reason == reason
    body = client.put(url(world), {"paused": False}, format="json").json()
    assert body["pause_reason"] == "" and body["paused"] is False


def test_enabled_it_waits_for_its_trigger(world):
    body = world.client("dave").put(url(world), {"enabled": True}, format="json").json()
    assert body["state"] == "waiting" and body["detail"].startswith("Waiting")


def test_bad_settings_are_400s_naming_the_field_and_change_nothing(world):
    client = world.client("dave")
    client.put(url(world), {"max_kl": 3}, format="json")
    row = Autopilot.objects.values().get()
    cases = [
        ({"trigger_share": 2}, "trigger_share"),
        ({"stage": "ppo"}, "stage"),
        ({"enabled": 1}, "enabled"),
        ({"nope": True}, "nope"),
        ({"step_params": {"policy": {"beta": "x"}}}, "step_params.policy.beta"),
        ({"step_params": {"generate": {"model_versions": [1]}}},
         "step_params.generate.model_versions"),
        (["not", "an", "object"], "body"),
    ]  # fmt: skip
    for data, field in cases:
        response = client.put(url(world), data, format="json")
        assert response.status_code == 400, data
        assert response.json()["errors"][0]["field"] == field, data
    assert Autopilot.objects.values().get() == row


SETTINGS = {"enabled": False, "trigger": "share", "trigger_share": 0.5, "trigger_rankings": 10,
            "stage": "dpo", "min_win_rate_low": 0.5, "max_kl": 1.0, "min_reward_accuracy": 0.6,
            "head_to_head_share": 0.5, "max_failed_gates": 3,
            "step_params": {"snapshot": {"test_fraction": 0.2}, "policy": {"beta": 0.1},
                            "generate": {"max_new_tokens": 8}}}  # fmt: skip
PLACES = [(k,) for k in SETTINGS if k != "step_params"] + [
    ("step_params", "snapshot"), ("step_params", "snapshot", "test_fraction"),
    ("step_params", "policy", "beta"), ("step_params", "generate", "max_new_tokens"),
]  # fmt: skip


def test_hostile_values_in_the_settings_are_refused_and_store_nothing(world):
    from tests.hostile import put

    client = world.client("dave")
    before = everything()

    def attempt(place, value):
        refused(post_json(client, url(world), put(SETTINGS, place, value), method="PUT"), before)
        assert not Autopilot.objects.exists()

    every_case(PLACES, EXAMPLES, hostile, attempt, once=BODY_EXAMPLES)


def test_runs_are_listed_newest_first_with_their_steps_and_gate(world):
    project = world.project_a
    first = AutopilotRun.objects.create(project=project, number=1, round=1, config={"stage": "dpo"},
                                        state="done", next_round=2, promoted=True,
                                        gate={"passed": True, "reason": "passed"})  # fmt: skip
    AutopilotStep.objects.create(run=first, name="snapshot", job=world.job_a)
    AutopilotRun.objects.create(
        project=project, number=2, round=2, config={"stage": "dpo"}, state="stopped",
        stop_reason="Train the reward model: failed",
    )  # fmt: skip
    body = world.client("dave").get(f"{url(world)}runs/").json()
    assert [r["number"] for r in body["results"]] == [2, 1]
    stopped, done = body["results"]
    assert stopped["state"] == "stopped" and "failed" in stopped["stop_reason"]
    assert done["gate"]["passed"] and done["promoted"] and done["next_round"] == 2
    steps = {s["name"]: s for s in done["steps"]}
    assert steps["snapshot"]["job"] == world.job_a.pk and steps["gate"]["status"] == "passed"
    assert steps["evaluate"]["status"] == "pending" and steps["promote"]["job"] is None
    # The autopilot's own page shows the stopped run and its reason.
    state = world.client("dave").get(url(world)).json()
    assert state["state"] == "stopped" and "failed" in state["detail"]
    assert state["run"]["number"] == 2


def test_resume_through_put_retries_the_failed_step(world, monkeypatch):
    from feedback_app.core.models import Job
    from feedback_app.finetuning import jobs

    monkeypatch.setattr(jobs, "_enqueue", lambda job: None)
    project = world.project_a
    Autopilot.objects.create(project=project, enabled=True, paused=True)
    failed = Job.objects.create(project=project, kind="build_dataset", status="failed", error="x")
    run = AutopilotRun.objects.create(project=project, number=1, round=1, state="stopped",
                                      step="snapshot", config={"stage": "dpo"},
                                      stop_reason="Build the pairs snapshot: failed")  # fmt: skip
    AutopilotStep.objects.create(run=run, name="snapshot", job=failed)
    body = world.client("dave").put(url(world), {"paused": False}, format="json").json()
    assert body["state"] == "running" and body["paused"] is False
    retry = Job.objects.get(retry_of=failed)
    assert AutopilotStep.objects.get(run=run).job == retry
    assert AuditEvent.objects.filter(action="autopilot.resume").exists()
    assert autopilot.autopilot_advance(project_id=project.pk) == "waiting:snapshot"


def test_hostile_query_parameters_of_the_runs_list_are_400s_naming_them(world):
    from tests.api.test_invalid_input import assert_named_4xx
    from tests.hostile import TEXT_EXAMPLES

    client = world.client("dave")
    for name in ("page_size", "cursor"):
        for value in TEXT_EXAMPLES:
            response = client.get(f"{url(world)}runs/", {name: value})
            assert_named_4xx(response)
            fields = {e["field"] for e in response.json()["errors"]}
            assert fields & {name, "url"}, (name, value)  # url: over 4 kB, a JSON 414
