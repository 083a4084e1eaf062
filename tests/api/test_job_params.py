"""Job params are stored in the shape they are accepted: a job's params posted back make the same
job (docs/api.md, "Jobs")."""

from __future__ import annotations

import pytest

from feedback_app.core.models import Job
from feedback_app.finetuning import kinds

# Little for each kind: the checker fills in the rest, and that is what must round-trip.
LAUNCH = {
    "generate": {"temperature": 0.7, "stop": ["\n"]},
    "build_dataset": {"min_votes": 2},
    "train_reward": {"epochs": 2.5, "center_rewards_coefficient": 0.1},
    "train_dpo": {
        "beta": 0.2,
        "lora": True,
        "lora_target_modules": ["c_attn"],
        "profile": {"processes": 2, "mixed_precision": "no"},
    },
    "train_sft": {"loss_type": "dft", "eval_prompts": 0},
    "train_kto": {"beta": 0.3, "desirable_weight": 1.5},
    "train_grpo": {"num_generations": 2, "batch_size": 4, "loss_type": "grpo"},
    "train_rloo": {"beta": 0.0, "normalize_advantages": True, "reward_clip_range": [-1, 1]},
    "train_ensemble": {"members": 3, "bootstrap": False},
    "train_best_of_n": {"n": 4, "reward_aggregate": "mean_minus_std", "reward_std_k": 0.5},
    "train_online_dpo": {"iterations": 1, "samples": 3, "min_margin": 0.1},
    "evaluate": {"samples_per_prompt": 2},
    "promote": {"model_version": None},  # set to a version of the world below
    "review_scores": {"margin": 0.5},
    "build_base": {"size": "tiny", "first_round": {"temperature": 0.5}},
    "judge_round": {"judge": None, "limit": 2},  # set to a judge of the world below
}


SFT_ROWS = [{"prompt": "p", "completion": " a"}, {"prompt": "q", "completion": " b"}]
KTO_ROWS = [
    {"prompt": "p", "completion": " a", "label": True},
    {"prompt": "q", "completion": " b", "label": False},
]


@pytest.fixture
def launchable(world, make_snapshot):
    from feedback_app.finetuning.versions import model_register
    from feedback_app.workspace.judges import JudgeSpec, judge_add

    model_register(project=world.project_a, kind="reward", name="rm", weights="/nowhere-rm")
    world.judge_a = judge_add(
        project=world.project_a,
        spec=JudgeSpec(
            name="ai-a", kind="openai", base_url="http://127.0.0.1:9/v1", model_name="m"
        ),
    )
    make_snapshot(world.project_a, SFT_ROWS, kind="sft")
    make_snapshot(world.project_a, KTO_ROWS, kind="kto")
    return world


def test_every_kind_is_covered():
    assert set(LAUNCH) == set(kinds.KINDS) - {"import_archive"}  # started by its upload only


def test_an_archive_import_is_not_launched_by_name(world):
    response = world.client("root").post(
        "/api/v1/jobs/",
        {"project": world.project_a.pk, "kind": "import_archive", "params": {"upload": "x.zip"}},
        "json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "kind"
    assert "import-archive" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("kind", list(LAUNCH))
def test_a_jobs_stored_params_posted_back_create_an_equal_job(launchable, kind):
    client = launchable.client("dave")
    a = launchable.project_a.pk
    params = dict(LAUNCH[kind])
    if kind == "promote":
        params["model_version"] = launchable.version_a.pk
    if kind == "judge_round":
        params["judge"] = launchable.judge_a.pk
    first = client.post("/api/v1/jobs/", {"project": a, "kind": kind, "params": params}, "json")
    assert first.status_code == 201, first.json()
    stored = client.get(f"/api/v1/jobs/{first.json()['id']}/").json()
    assert stored["params"] == Job.objects.get(pk=stored["id"]).params

    again = client.post(
        "/api/v1/jobs/",
        {"project": stored["project"], "kind": stored["kind"], "params": stored["params"]},
        "json",
    )

    assert again.status_code == 201, again.json()
    second = again.json()
    assert second["id"] != stored["id"]
    assert (second["kind"], second["params"]) == (stored["kind"], stored["params"])


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"processes": 0}, "profile.processes"),
        ({"processes": "2"}, "profile.processes"),
        ({"launcher": "mpirun"}, "profile.launcher"),
        ({"mixed_precision": "fp8"}, "profile.mixed_precision"),
        ({"lora": "yes"}, "profile.lora"),
        ({"accelerate_config": 3}, "profile.accelerate_config"),
        ({"gpus": 2}, "profile.gpus"),
        ([2], "profile"),
    ],
)
def test_a_bad_worker_profile_override_is_refused_naming_its_field(launchable, profile, field):
    client = launchable.client("dave")
    a = launchable.project_a.pk
    before = Job.objects.count()
    body = {"project": a, "kind": "train_sft", "params": {"profile": profile}}
    response = client.post("/api/v1/jobs/", body, "json")
    assert response.status_code == 400, response.json()
    assert field in str(response.json())
    assert Job.objects.count() == before
