"""The policy stages after the reward model (SFT, KTO, GRPO, RLOO): refused before any work when
the dataset or the reward model cannot serve them, offered on the loop page, and shown in the
lineage with the stage that made each version."""

from __future__ import annotations

import importlib.util

import pytest
from django.urls import reverse

from feedback_app.common.errors import InvalidInput
from feedback_app.core.models import Job, ModelVersion
from feedback_app.finetuning import services, versions
from feedback_app.finetuning.forms import stage_form
from training.stages import STAGES as STAGE_TABLE

pytestmark = pytest.mark.django_db

SFT_ROWS = [{"prompt": "p", "completion": " a"}, {"prompt": "q", "completion": " b"}]
KTO_ROWS = [
    {"prompt": "p", "completion": " a", "label": True},
    {"prompt": "q", "completion": " b", "label": False},
]
PAIRS = [
    {"prompt": "p", "chosen": " a", "rejected": " b"},
    {"prompt": "q", "chosen": " c", "rejected": " d"},
]
STAGES = ("train_sft", "train_kto", "train_grpo", "train_rloo")


def _refusal(project, kind, params) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(project=project, kind=kind, params=params)
    assert not Job.objects.filter(kind=kind).exists()
    return [(p.field, p.message) for p in caught.value.problems]


@pytest.fixture
def reward(loop_project, tmp_path):
    project, _ = loop_project
    return versions.model_register(
        project=project, kind="reward", name="rm", weights=str(tmp_path / "rm")
    )


def test_sft_and_kto_refuse_a_snapshot_of_another_kind_naming_snapshot(loop_project, make_snapshot):
    project, _ = loop_project
    pairs = make_snapshot(project, PAIRS)
    for kind in ("train_sft", "train_kto"):
        [(field, message)] = _refusal(project, kind, {"snapshot": pairs.pk})
        assert field == "snapshot" and "Preference pairs" in message
    sft = make_snapshot(project, SFT_ROWS, kind="sft")
    for kind in ("train_reward", "train_dpo", "train_kto"):
        [(field, message)] = _refusal(project, kind, {"snapshot": sft.pk})
        assert field == "snapshot" and "SFT rows" in message


def test_without_a_snapshot_of_its_kind_a_stage_is_refused_naming_snapshot(
    loop_project, make_snapshot
):
    project, _ = loop_project
    make_snapshot(project, PAIRS)  # the newest snapshot, but pairs: not a default for SFT
    [(field, message)] = _refusal(project, "train_sft", {})
    assert field == "snapshot" and "no SFT rows dataset snapshot" in message


def test_too_few_rows_are_refused_naming_snapshot(loop_project, make_snapshot, reward):
    project, _ = loop_project
    make_snapshot(project, SFT_ROWS[:1], kind="sft")
    make_snapshot(project, KTO_ROWS[:1], kind="kto")
    assert _refusal(project, "train_sft", {}) == [
        ("snapshot", "too few training rows: 1, at least 2 needed")
    ]
    assert _refusal(project, "train_kto", {}) == [
        ("snapshot", "too few training rows: 1, at least 2 needed")
    ]
    for kind in ("train_grpo", "train_rloo"):  # the newest snapshot has one prompt
        assert _refusal(project, kind, {}) == [
            ("snapshot", "too few training prompts: 1, at least 2 needed")
        ]


def test_online_rl_needs_a_reward_model_of_this_project(
    loop_project, make_snapshot, make_project, tmp_path
):
    project, base = loop_project
    make_snapshot(project, PAIRS)
    for kind in ("train_grpo", "train_rloo"):
        assert _refusal(project, kind, {})[0][0] == "reward_model"  # none yet
        assert _refusal(project, kind, {"reward_model": base.pk}) == [
            ("reward_model", f"no reward model version {base.pk} in this project")
        ]
    other = make_project(name="other")
    foreign = versions.model_register(
        project=other, kind="reward", name="rm-x", weights=str(tmp_path / "x")
    )
    assert _refusal(project, "train_grpo", {"reward_model": foreign.pk})[0][0] == "reward_model"
    assert _refusal(project, "train_grpo", {"reward_model": "seven"})[0][0] == "reward_model"


def test_bad_hyperparameters_are_refused_naming_the_field(loop_project, make_snapshot, reward):
    project, _ = loop_project
    make_snapshot(project, SFT_ROWS, kind="sft")
    make_snapshot(project, KTO_ROWS, kind="kto")
    assert _refusal(project, "train_sft", {"loss_type": "ppo"})[0][0] == "loss_type"
    assert _refusal(project, "train_kto", {"batch_size": 1})[0][0] == "batch_size"
    assert _refusal(project, "train_grpo", {"batch_size": 6})[0][0] == "batch_size"
    assert _refusal(project, "train_rloo", {"beta": -1})[0][0] == "beta"
    assert _refusal(project, "train_sft", {"eval_prompts": -1})[0][0] == "eval_prompts"
    assert _refusal(project, "train_sft", {"eval_prompts": True})[0][0] == "eval_prompts"
    assert _refusal(project, "train_sft", {"epochs": 1e9})[0][0] == "epochs"


def test_each_stage_stores_flat_params_with_defaults_and_resolved_ids(
    loop_project, make_snapshot, reward
):
    project, base = loop_project
    sft = make_snapshot(project, SFT_ROWS, kind="sft")
    kto = make_snapshot(project, KTO_ROWS, kind="kto")
    jobs = {kind: services.job_launch(project=project, kind=kind, params={}) for kind in STAGES}
    assert jobs["train_sft"].params["snapshot"] == sft.pk
    assert jobs["train_kto"].params["snapshot"] == kto.pk
    assert jobs["train_grpo"].params["snapshot"] == kto.pk  # the newest: it reads prompts
    for kind, job in jobs.items():
        assert job.params["policy"] == base.pk and job.params["eval_prompts"] == 16, kind
        assert job.queue == "training"
        assert all(not isinstance(v, dict) for v in job.params.values())
    assert jobs["train_grpo"].params["reward_model"] == reward.pk
    assert jobs["train_grpo"].params["num_generations"] == 4
    assert "reward_model" not in jobs["train_sft"].params


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("boss", is_staff=True))
    return client


def test_the_loop_page_offers_every_stage_and_refuses_on_the_field(
    admin_client, loop_project, make_snapshot
):
    project, _ = loop_project
    body = admin_client.get(reverse("finetuning:loop", args=[project.pk])).content.decode()
    for kind in STAGES:
        assert f'data-testid="start-{kind}"' in body
    assert 'name="train_grpo-reward_model"' in body and 'name="train_kto-beta"' in body

    make_snapshot(project, PAIRS)
    form = stage_form(STAGE_TABLE["sft"])(project=project, prefix="train_sft")
    data = {
        f"train_sft-{name}": field.initial
        for name, field in form.fields.items()
        if field.initial is not None
    }
    response = admin_client.post(reverse("finetuning:launch", args=[project.pk, "train_sft"]), data)
    assert response.status_code == 400
    assert "no SFT rows dataset snapshot" in response.content.decode()
    assert not Job.objects.exists()


def test_the_lineage_shows_the_stage_that_made_each_version(admin_client, loop_project, tmp_path):
    project, base = loop_project
    versions.model_register(
        project=project, kind="policy", name="after-grpo", weights=str(tmp_path / "g"),
        parent=base, stage=ModelVersion.Stage.GRPO,
    )  # fmt: skip
    body = admin_client.get(reverse("finetuning:models", args=[project.pk])).content.decode()
    assert '<td data-testid="stage">GRPO</td>' in body


@pytest.fixture(params=["cpu", "cuda"])
def device(request, monkeypatch, settings):
    """The device probe answers for this device (torch itself is left alone)."""
    from feedback_app.finetuning import params

    settings.TRAINING_DEVICE = "auto"
    monkeypatch.setattr(params, "_cuda_available", lambda: request.param == "cuda")
    return request.param


def test_stage_defaults_follow_the_device_in_the_job_and_on_the_form(
    device, loop_project, make_snapshot, reward
):
    from feedback_app.finetuning.params import DEVICE_DEFAULTS

    TrainDPOForm, TrainGRPOForm = stage_form(STAGE_TABLE["dpo"]), stage_form(STAGE_TABLE["grpo"])

    project, _ = loop_project
    make_snapshot(project, PAIRS)
    expected = DEVICE_DEFAULTS[device]
    assert DEVICE_DEFAULTS["cpu"] != DEVICE_DEFAULTS["cuda"]
    grpo = services.job_launch(project=project, kind="train_grpo", params={})
    dpo = services.job_launch(project=project, kind="train_dpo", params={})
    for name in ("epochs", "batch_size", "max_length", "num_generations", "max_completion_length"):
        assert grpo.params[name] == expected[name], name
    assert (dpo.params["max_length"], dpo.params["epochs"]) == (
        expected["max_length"],
        expected["epochs"],
    )
    assert "num_generations" not in dpo.params  # only where the stage's config has the field
    given = services.job_launch(
        project=project, kind="train_grpo", params={"num_generations": 2, "batch_size": 4}
    )
    assert (given.params["num_generations"], given.params["batch_size"]) == (2, 4)

    form = TrainGRPOForm(project=project, prefix="train_grpo")
    assert form.fields["num_generations"].initial == expected["num_generations"]
    assert form.fields["max_completion_length"].initial == expected["max_completion_length"]
    assert (
        TrainDPOForm(project=project, prefix="train_dpo").fields["max_length"].initial
        == (expected["max_length"])
    )
    assert form.device_note.startswith(f"Defaults for {device.upper()}:")


def test_a_configured_training_device_wins_over_the_probe(monkeypatch, settings):
    from feedback_app.finetuning import params

    monkeypatch.setattr(params, "_cuda_available", lambda: True)
    settings.TRAINING_DEVICE = "cpu"
    assert params.training_device() == "cpu"
    assert params.stage_defaults("train_rloo")["num_generations"] == 4
    settings.TRAINING_DEVICE = "auto"
    assert params.training_device() == "cuda"
    import doctest

    assert doctest.testmod(params).failed == 0


def test_without_a_gpu_driver_the_probe_answers_no_gpu_without_importing_torch(monkeypatch):
    import sys

    from feedback_app.finetuning import params

    monkeypatch.setattr(params.os.path, "exists", lambda _path: False)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` would raise ImportError
    assert params._cuda_available.__wrapped__() is False


def test_the_loop_page_and_the_api_schema_show_the_device_defaults(
    device, admin_client, loop_project
):
    project, _ = loop_project
    body = admin_client.get(reverse("finetuning:loop", args=[project.pk])).content.decode()
    assert f"Defaults for {device.upper()}: epochs" in body
    for kind in ("train_reward", "train_dpo", *STAGES):  # every training stage says it
        assert f'data-testid="device-{kind}"' in body, kind
    schema = admin_client.get("/api/v1/schema/?format=json").json()
    params = schema["components"]["schemas"]["JobCreateRequest"]["properties"]["params"]
    text = params["description"]
    assert "cpu: epochs=1" in text and "cuda: epochs=3" in text and "TRAINING_DEVICE" in text


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="vLLM is installed: it may run here"
)
@pytest.mark.parametrize("kind", [s.kind for s in STAGE_TABLE.values() if s.generates])
def test_a_sampling_stage_asked_for_vllm_where_it_is_not_installed_fails_saying_so(
    kind, loop_project, make_snapshot, reward, monkeypatch
):
    from feedback_app.finetuning import jobs, kinds

    project, _ = loop_project
    make_snapshot(project, PAIRS)
    job = services.job_launch(project=project, kind=kind, params={"reward_model": reward.pk})
    monkeypatch.setenv("TRAIN_GENERATION_ENGINE", "vllm")
    jobs.job_execute(job_id=job.pk, worker="test", runners=kinds.RUNNERS)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "TRAIN_GENERATION_ENGINE=vllm but vllm is not installed" in job.error
    # Refused before any work: where it would have run is on the row, no engine, no version.
    assert "ran_on" in job.outputs and "engine" not in job.outputs
    assert not ModelVersion.objects.filter(job=job).exists()


def test_a_sampling_stage_records_the_engine_it_generated_with_on_its_page(
    loop_project, make_snapshot, tiny_base_model, tmp_path, admin_client
):
    from feedback_app.finetuning import jobs, kinds
    from training.config import RewardTrainConfig
    from training.reward import train_reward

    project, _ = loop_project
    base = versions.model_register(
        project=project, kind="policy", name="tiny", weights=tiny_base_model
    )
    train_reward(tiny_base_model, PAIRS, tmp_path / "rm", RewardTrainConfig(batch_size=2))
    rm = versions.model_register(project=project, kind="reward", name="rm", weights=tmp_path / "rm")
    snapshot = make_snapshot(project, PAIRS * 2)
    params = {"snapshot": snapshot.pk, "policy": base.pk, "reward_model": rm.pk, "n": 2}
    params.update(max_new_tokens=4, batch_size=2, max_length=32, eval_prompts=0)
    job = services.job_launch(project=project, kind="train_best_of_n", params=params)
    jobs.job_execute(job_id=job.pk, worker="test", runners=kinds.RUNNERS)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.outputs["engine"]["name"] == "transformers"  # no vLLM here
    assert job.outputs["metrics"]["generation_engine"] == job.outputs["engine"]
    page = admin_client.get(reverse("finetuning:job", args=[job.pk])).content.decode()
    section = page.split('data-testid="ran-on"', 1)[1].split("</section>", 1)[0]
    assert "Generation engine</th><td>transformers" in section
