"""A training stage is declared once (training/stages.py): a stage added to the table in one place,
with a train function of its own, is a launch form on the loop page, a job kind in the API
schema, a CLI command with the app's device defaults, an autopilot choice, and a job that runs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.urls import reverse

from feedback_app.core.models import Job, ModelVersion
from feedback_app.finetuning import autopilot, jobs, kinds, services
from feedback_app.finetuning.forms import AutopilotForm
from training import cli
from training.config import DPOTrainConfig
from training.data import write_jsonl
from training.stages import DEVICE_DEFAULTS, PAIRS, STAGES, Stage, stage_registered

PAIR_ROWS = [{"prompt": f"p{i}", "chosen": " a", "rejected": " b"} for i in range(3)]


def train_toy(start, rows, out, config, progress=None):
    """A train function in the shared signature that trains nothing: it reports what it got."""
    metrics = {"start": start, "rows": len(rows), "epochs": config.epochs}
    metrics["max_length"] = config.max_length
    return SimpleNamespace(output_dir=str(out), stopped=False, metrics=metrics)


TOY = Stage(
    "toy", "Toy", "Train with Toy", DPOTrainConfig, train_toy, PAIRS,
    ("beta", "max_length", "loss_type"), "a stage that trains nothing",
    evaluates=False, choices=(("loss_type", ("sigmoid", "hinge")),),
)  # fmt: skip


@pytest.fixture
def toy(settings):
    settings.TRAINING_DEVICE = "cpu"  # the app's defaults below are the CPU's
    with stage_registered(TOY) as stage:
        yield stage
    assert "toy" not in STAGES and "train_toy" not in kinds.KINDS  # gone again after the test


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("boss", is_staff=True))
    return client


def test_a_stage_added_to_the_table_is_a_launch_form_on_the_loop_page(
    toy, admin_client, loop_project
):
    project, _ = loop_project
    assert kinds.KINDS["train_toy"].label == "Train with Toy"
    form = kinds.FORMS["train_toy"](project=project, prefix="train_toy")
    assert list(form.fields) == ["snapshot", "policy", "beta", "max_length", "loss_type"]
    assert form.fields["max_length"].initial == DEVICE_DEFAULTS["cpu"]["max_length"]
    body = admin_client.get(reverse("finetuning:loop", args=[project.pk])).content.decode()
    assert 'data-testid="start-train_toy"' in body and 'name="train_toy-beta"' in body


def test_a_stage_added_to_the_table_is_in_the_api_schema(toy, admin_client):
    schema = admin_client.get("/api/v1/schema/?format=json").json()
    components = schema["components"]["schemas"]

    def enum_of(component: str, field: str) -> list[str]:
        prop = components[component]["properties"][field]
        ref = prop.get("$ref") or prop["allOf"][0]["$ref"]
        return components[ref.rsplit("/", 1)[1]]["enum"]

    assert "train_toy" in enum_of("JobCreateRequest", "kind")
    assert "toy" in enum_of("AutopilotSettingsRequest", "stage")


def test_a_stage_added_to_the_table_is_a_cli_command_with_the_apps_device_defaults(
    toy, tmp_path, capsys
):
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert "train-toy" in commands
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, PAIR_ROWS)
    for device in ("cpu", "cuda"):
        status = cli.main(
            ["train-toy", "--policy", "base", "--pairs", str(pairs), "--out", str(tmp_path)]
            + ["--device", device, "--set", "beta=0.3"]
        )
        assert status == 0
        metrics = json.loads(capsys.readouterr().out)["metrics"]
        assert metrics == {
            "start": "base",
            "rows": 3,
            "epochs": DEVICE_DEFAULTS[device]["epochs"],
            "max_length": DEVICE_DEFAULTS[device]["max_length"],
        }


def test_a_stage_added_to_the_table_is_an_autopilot_choice(toy, loop_project):
    project, _ = loop_project
    assert ("toy", "Toy") in AutopilotForm().fields["stage"].choices
    pilot = autopilot.autopilot_update(project=project, data={"stage": "toy"})
    assert pilot.stage == "toy"
    assert autopilot.step_kind(autopilot.POLICY, "toy") == "train_toy"
    assert autopilot.KTO_SNAPSHOT not in autopilot.run_steps("toy")  # it trains on the pairs


def test_a_stage_added_to_the_table_runs_as_a_job_with_the_generic_runner(
    toy, loop_project, make_snapshot
):
    project, base = loop_project
    snapshot = make_snapshot(project, PAIR_ROWS)
    job = services.job_launch(project=project, kind="train_toy", params={"beta": 0.3})
    assert job.params["snapshot"] == snapshot.pk and job.params["policy"] == base.pk
    assert job.params["max_length"] == DEVICE_DEFAULTS["cpu"]["max_length"]

    status = jobs.job_execute(job_id=job.pk, worker="test", runners=kinds.RUNNERS)

    assert status == Job.Status.SUCCEEDED
    version = ModelVersion.objects.get(pk=Job.objects.get(pk=job.pk).outputs["model_version"])
    assert (version.stage, version.parent_id, version.metrics["rows"]) == ("toy", base.pk, 3)
