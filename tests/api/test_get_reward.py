"""A reward model served to other engines: `POST /api/v1/reward-models/{id}/get_reward` in
OpenRLHF's shape, token-authenticated, for the admins of its project, bounded, loaded once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from feedback_app.finetuning import reward_serving
from feedback_app.finetuning.versions import model_register

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ["The list type is useful and simple.", "The list type raises an error."]


@pytest.fixture(scope="session")
def tiny_reward_dir(tmp_path_factory, tiny_policy) -> str:
    """A tiny reward model trained for a few steps (its head saved, so scores are repeatable)."""
    from training.config import RewardTrainConfig
    from training.reward import train_reward

    pairs = [
        {"prompt": p, "chosen": " useful and simple.", "rejected": " raises an error."}
        for p in ("The list type is", "A function call", "The with statement", "Each module")
    ]
    out = tmp_path_factory.mktemp("rm")
    train_reward(tiny_policy, pairs, out, RewardTrainConfig(batch_size=4, max_length=64))
    return str(out)


@pytest.fixture
def reward(world, tiny_reward_dir):
    reward_serving._loaded.clear()  # each test starts with nothing loaded in this process
    yield model_register(project=world.project_a, kind="reward", name="rm", weights=tiny_reward_dir)
    reward_serving._loaded.clear()


def url(version_id) -> str:
    return f"/api/v1/reward-models/{version_id}/get_reward"


def test_get_reward_answers_one_reward_a_query_as_the_model_scores_it(world, reward):
    from training.reward import RewardScorer

    response = world.client("dave").post(url(reward.pk), {"query": QUERIES}, "json")
    assert response.status_code == 200, response.json()
    rewards = response.json()["rewards"]
    scorer = RewardScorer(reward.weights)
    expected = scorer.score([q + scorer.tokenizer.eos_token for q in QUERIES])
    assert rewards == pytest.approx(expected, abs=1e-5)
    assert rewards[0] != rewards[1]


def test_openrlhfs_extra_keys_are_ignored(world, reward):
    body = {"query": QUERIES, "prompts": ["a", "b"], "labels": ["x", "y"]}
    response = world.client("root").post(url(reward.pk), body, "json")
    assert response.status_code == 200 and len(response.json()["rewards"]) == 2


def test_the_model_is_loaded_once_a_process_and_the_oldest_evicted(world, reward, settings):
    client = world.client("dave")
    for _ in range(2):
        assert client.post(url(reward.pk), {"query": QUERIES[:1]}, "json").status_code == 200
    assert reward_serving.loaded_models() == [reward.weights]
    scorer = reward_serving.reward_scorer(reward)
    client.post(url(reward.pk), {"query": QUERIES}, "json")
    assert reward_serving.reward_scorer(reward) is scorer  # the same loaded model, not a new one
    settings.REWARD_SERVE_MODELS = 1
    link = Path(reward.weights).parent / "rm-other"
    link.unlink(missing_ok=True)
    link.symlink_to(reward.weights)
    other = model_register(project=world.project_a, kind="reward", name="rm2", weights=str(link))
    assert client.post(url(other.pk), {"query": QUERIES}, "json").status_code == 200
    assert reward_serving.loaded_models() == [str(link)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "query"),
        ({"query": []}, "query"),
        ({"query": "one text"}, "query"),
        ({"query": ["x"] * (reward_serving.MAX_QUERIES + 1)}, "query"),
        ({"query": ["fine", "y" * (reward_serving.MAX_QUERY_CHARS + 1)]}, "query[1]"),
        ({"query": ["fine", 3]}, "query[1]"),
        ({"query": ["fine", ""]}, "query[1]"),
        (["fine"], "query"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field_and_loads_nothing(world, reward, body, field):
    response = world.client("dave").post(url(reward.pk), body, "json")
    assert response.status_code == 400, response.json()
    assert any(e.get("field") == field for e in response.json()["errors"]), response.json()
    assert reward_serving.loaded_models() == []


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("revoked", 401), ("alice", 404), ("bob", 404), ("dave", 200)],
)
def test_only_the_admins_of_its_project_score_with_a_reward_model(world, reward, role, status):
    response = world.client(role).post(url(reward.pk), {"query": QUERIES}, "json")
    assert response.status_code == status, response.content


def test_a_policy_version_or_a_missing_one_is_not_found(world, reward):
    client = world.client("dave")
    assert client.post(url(world.version_a.pk), {"query": QUERIES}, "json").status_code == 404
    assert client.post(url(reward.pk + 999), {"query": QUERIES}, "json").status_code == 404


def test_the_web_process_does_not_import_torch_when_it_loads_its_urls():
    code = (
        "import sys, django; django.setup(); "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "import feedback_app.api.views.reward_models, feedback_app.finetuning.reward_serving; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "feedback_app.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
