"""Serving a model version over the OpenAI protocol, and the playground that asks two.

The playground's answers come from a real `transformers serve` (tests/model_server.py) on the
tiny local model; the verdicts are stored as deployment feedback with the version."""

from __future__ import annotations

import importlib.util
import re
import shlex
from html import unescape

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from feedback_app.finetuning import serving, versions
from feedback_app.preferences.models import DeploymentFeedback
from training.serving import serve_command

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("boss", is_staff=True))
    return client


@pytest.fixture
def two_versions(make_project, alice, tiny_base_model):
    """A project whose base and one trained policy both have real weights (the tiny model)."""
    project = make_project(name="play", k=2, overlap=1, n_tasks=1, annotators=[alice])
    base = versions.model_register(
        project=project, kind="policy", name="base", weights=tiny_base_model
    )
    policy = versions.model_register(
        project=project, kind="policy", name="policy-1", stage="dpo", weights=tiny_base_model,
        parent=base,
    )  # fmt: skip
    return project, base, policy


def _serve(*args: str) -> list[str]:
    from io import StringIO

    out = StringIO()
    call_command("serve_model", *args, "--print", stdout=out)
    return shlex.split(out.getvalue())


def test_serve_model_runs_transformers_serve_on_the_versions_weights(two_versions, tiny_base_model):
    _, _, policy = two_versions
    command = _serve(str(policy.pk), "--port", "8123", "--host", "0.0.0.0")
    assert command[0].endswith("transformers") and command[1] == "serve"
    assert command[2:] == [
        tiny_base_model,
        "--device", "cpu", "--host", "0.0.0.0", "--port", "8123",
    ]  # fmt: skip


def test_serve_model_without_a_version_serves_every_version_on_demand(two_versions):
    command = _serve("--port", "8124")
    assert command[1:] == ["serve", "--device", "cpu", "--host", "127.0.0.1", "--port", "8124"]


def test_vllm_serves_the_weights_under_the_name_the_playground_asks_for():
    command = serve_command(weights="/m/policy-1", engine="vllm", host="0.0.0.0", port=9)
    assert command[0].endswith("vllm")
    assert command[1:] == [
        "serve", "/m/policy-1", "--served-model-name", "/m/policy-1",
        "--host", "0.0.0.0", "--port", "9",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="weights"):
        serve_command(weights=None, engine="vllm")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_is_refused_clearly_where_it_is_not_installed(two_versions):
    with pytest.raises(CommandError, match="engine: vllm is not installed"):
        _serve(str(two_versions[2].pk), "--engine", "vllm")


def test_a_version_without_weights_is_refused_naming_the_path(make_project, tmp_path):
    project = make_project(name="gone", k=2, overlap=1, n_tasks=1)
    missing = versions.model_register(
        project=project, kind="policy", name="missing", weights=str(tmp_path / "deleted")
    )
    (tmp_path / "empty").mkdir()
    empty = versions.model_register(
        project=project, kind="policy", name="empty", weights=str(tmp_path / "empty")
    )
    with pytest.raises(CommandError, match=r"weights: no weights at .*deleted"):
        _serve(str(missing.pk))
    with pytest.raises(CommandError, match=r"weights: .*empty holds no model"):
        _serve(str(empty.pk))
    with pytest.raises(CommandError, match="version: no model version 999999"):
        _serve("999999")


def test_model_server_urls_name_a_version_or_every_version(settings):
    assert serving.server_urls("7=http://a:1/v1/, *=http://b:2/v1") == {
        "7": "http://a:1/v1",
        "*": "http://b:2/v1",
    }
    with pytest.raises(ValueError, match="MODEL_SERVER_URLS"):
        serving.server_urls("policy=http://a:1/v1")


def _hidden(body: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', body)
    assert match, f"no {name} in {body[:500]}"
    return unescape(match.group(1))


@pytest.mark.server
def test_the_playground_asks_two_served_versions_and_stores_the_verdict_with_the_version(
    admin_client, two_versions, chat_server, settings
):
    project, base, policy = two_versions
    settings.MODEL_SERVER_URLS = f"*={chat_server[0]}"
    settings.PLAYGROUND_MAX_TOKENS = 6
    prompt = "The list type is"
    page = admin_client.post(
        reverse("finetuning:playground", args=[project.pk]),
        {"prompt": prompt, "a": policy.pk, "b": base.pk},
    )
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="pending-a"' in body and 'data-testid="pending-b"' in body  # pending
    assert 'data-testid="choose-a" disabled' in body  # until both answers are in

    answers = {}
    for side, version in (("a", policy), ("b", base)):
        fragment = admin_client.post(
            reverse("finetuning:playground-answer", args=[project.pk]),
            {"prompt": prompt, "version": version.pk, "side": side},
        ).content.decode()
        assert f'data-testid="answer-text-{side}"' in fragment, fragment
        assert _hidden(fragment, f"{side}_version") == str(version.pk)
        assert re.search(r"[1-9]\d* tokens in", fragment)  # the server's usage: it answered
        # The tiny model often answers blank lines, which feedback refuses as empty text: mark
        # each answer so it is text (what is stored is still exactly what is posted back).
        answers[side] = _hidden(fragment, f"{side}_text") + f"[{side}]"

    feedback_url = reverse("finetuning:playground-feedback", args=[project.pk])
    form = {"prompt": prompt, "a_version": policy.pk, "b_version": base.pk,
            "a_text": answers["a"], "b_text": answers["b"]}  # fmt: skip
    response = admin_client.post(feedback_url, form | {"verdict": "b-down"})
    assert response.status_code == 302
    thumb = DeploymentFeedback.objects.get(project=project)
    assert (thumb.kind, thumb.rating, thumb.model_version, thumb.response) == (
        "thumbs", "down", base, answers["b"],
    )  # fmt: skip
    assert thumb.source == "playground" and thumb.prompt_text == prompt

    admin_client.post(feedback_url, form | {"verdict": "a"})
    choice = DeploymentFeedback.objects.get(project=project, kind="choice")
    assert choice.model_version == policy and choice.chosen == answers["a"]
    assert choice.rejected == answers["b"] and choice.metadata["rejected_version"] == base.pk


def test_a_version_with_no_server_says_so_in_its_panel(admin_client, two_versions, settings):
    project, base, _ = two_versions
    settings.MODEL_SERVER_URLS = ""
    fragment = admin_client.post(
        reverse("finetuning:playground-answer", args=[project.pk]),
        {"prompt": "p", "version": base.pk, "side": "a"},
    ).content.decode()
    assert 'data-testid="answer-error-a"' in fragment and "is not served" in fragment


def test_a_bad_verdict_or_a_version_of_another_project_stores_nothing(
    admin_client, two_versions, make_project
):
    project, base, policy = two_versions
    other = versions.model_register(
        project=make_project(name="other", k=2, overlap=1, n_tasks=1), kind="policy",
        name="theirs", weights="gpt2",
    )  # fmt: skip
    url = reverse("finetuning:playground-feedback", args=[project.pk])
    form = {"prompt": "p", "a_version": policy.pk, "b_version": base.pk, "a_text": "x",
            "b_text": "y"}  # fmt: skip
    admin_client.post(url, form | {"verdict": "maybe"})
    admin_client.post(url, form | {"b_version": other.pk, "verdict": "a"})
    assert not DeploymentFeedback.objects.exists()
    page = admin_client.post(
        reverse("finetuning:playground", args=[project.pk]), {"prompt": "p", "a": other.pk}
    )
    assert page.status_code == 400 and "a: choose a policy version" in page.content.decode()


def test_the_playground_is_for_project_admins_only(client, two_versions, alice, make_user):
    project, base, _ = two_versions
    urls = [
        ("get", reverse("finetuning:playground", args=[project.pk])),
        ("post", reverse("finetuning:playground", args=[project.pk])),
        ("post", reverse("finetuning:playground-answer", args=[project.pk])),
        ("post", reverse("finetuning:playground-feedback", args=[project.pk])),
    ]
    for user in (alice, make_user("stranger")):  # an annotator of the project, an outsider
        client.force_login(user)
        for method, url in urls:
            assert getattr(client, method)(url, {"version": base.pk}).status_code == 404, url
    assert not DeploymentFeedback.objects.exists()


def test_the_playground_page_has_no_inline_script_or_style(admin_client, two_versions):
    project, base, policy = two_versions
    page = admin_client.post(
        reverse("finetuning:playground", args=[project.pk]),
        {"prompt": "<script>alert(1)</script>", "a": policy.pk, "b": base.pk},
    )
    body = page.content.decode()
    assert "Content-Security-Policy" in page.headers
    scripts = re.findall(r"<script([^>]*)>", body)
    assert scripts and all('src="' in attrs for attrs in scripts), scripts
    assert not re.search(r"\son[a-z]+=", body) and " style=" not in body
    assert "<script>alert(1)</script>" not in body  # the prompt is escaped
