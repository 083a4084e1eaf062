"""Model versions served over the OpenAI chat-completions protocol, and the playground that
asks two of them the same prompt (README, "Serving a model version").

The servers are existing ones (`transformers serve`, vLLM), started by `manage.py serve_model`
(`serve_command_for`). Where each version listens is the `MODEL_SERVER_URLS` setting. The
playground's answers are short bounded calls to servers that already run (docs/architecture.md,
"Serving and the playground", says why not a job); what an admin says about them is stored as
deployment feedback with the version (`preferences.feedback.feedback_record`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.common.storable import is_id
from feedback_app.core.models import ModelVersion, Project
from feedback_app.preferences.feedback import feedback_record
from feedback_app.preferences.models import DeploymentFeedback
from training.serving import Answer, ServingError, chat_answer, check_engine, serve_command

SOURCE = "playground"  # DeploymentFeedback.source of everything the playground stores
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def check_weights(version: ModelVersion) -> str:
    """The version's weights as a server loads them: a local folder with a config, or a hub id.

    A folder that is missing or holds no `config.json` (a version whose training failed or
    whose files were removed) is refused naming the path, before any server starts.
    """
    weights = (version.weights or "").strip()
    if not weights:
        raise InvalidInput(Problem("weights", f"version {version.pk} has no weights"))
    path = Path(weights)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InvalidInput(Problem("weights", f"{weights} holds no model (no config.json)"))
        return weights  # as stored: the name a server given these weights answers to
    if path.is_absolute() or weights.startswith(".") or not _HUB_ID.match(weights):
        raise InvalidInput(Problem("weights", f"no weights at {weights}"))
    return weights  # a hub id: the server loads it from the local cache (or the hub)


def serve_command_for(
    *,
    version: ModelVersion | None,
    engine: str = "transformers",
    host: str = "127.0.0.1",
    port: int = 8001,
    device: str = "cpu",
) -> list[str]:
    """The command line that serves `version` (None: every version, loaded on demand)."""
    try:
        check_engine(engine)
    except ServingError as exc:
        raise InvalidInput(Problem("engine", str(exc))) from None
    if version is None and engine != "transformers":
        raise InvalidInput(Problem("version", f"{engine} serves one version: name it"))
    weights = check_weights(version) if version is not None else None
    return serve_command(weights=weights, engine=engine, host=host, port=port, device=device)  # type: ignore[arg-type]


def server_urls(raw: str | None = None) -> dict[str, str]:
    """`MODEL_SERVER_URLS` read: {"<version id>" or "*": base url}."""
    raw = settings.MODEL_SERVER_URLS if raw is None else raw
    urls: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, url = item.partition("=")
        key, url = key.strip(), url.strip().rstrip("/")
        if (
            not sep
            or not (key == "*" or key.isdigit())
            or not url.startswith(("http://", "https://"))
        ):
            raise ValueError(f"MODEL_SERVER_URLS: {item!r} is not <version id>=<url> or *=<url>")
        urls[key] = url
    return urls


def version_server_url(version: ModelVersion) -> str | None:
    """Where `version` is served, or None when no server is configured for it."""
    urls = server_urls()
    return urls.get(str(version.pk)) or urls.get("*")


def playground_version(*, project: Project, version_id: Any, field: str) -> ModelVersion:
    """A policy version of `project` (the base included) named by a form field."""
    version = (
        ModelVersion.objects.filter(
            project=project, kind=ModelVersion.Kind.POLICY, pk=version_id
        ).first()
        if isinstance(version_id, str) and is_id(version_id)
        else None
    )
    if version is None:
        raise InvalidInput(Problem(field, "choose a policy version of this project"))
    return version


def check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInput(Problem("prompt", "write a prompt"))
    if len(prompt) > 8000:
        raise InvalidInput(Problem("prompt", "at most 8000 characters"))
    return prompt


def playground_answer(*, version: ModelVersion, prompt: str) -> Answer:
    """One completion of `prompt` by `version`'s server, bounded by the configured timeout.

    Raises InvalidInput naming `version` when no server is configured or it did not answer
    (the page shows the reason in that version's panel; nothing is stored)."""
    url = version_server_url(version)
    if url is None:
        raise InvalidInput(
            Problem("version", f"{version.label} is not served (set MODEL_SERVER_URLS)")
        )
    try:
        return chat_answer(
            base_url=url,
            model=check_weights(version),
            prompt=check_prompt(prompt),
            max_tokens=settings.PLAYGROUND_MAX_TOKENS,
            timeout=settings.MODEL_SERVER_TIMEOUT_SECONDS,
        )
    except ServingError as exc:
        raise InvalidInput(Problem("version", f"{version.label}: {exc}")) from None


def playground_feedback_record(
    *,
    project: Project,
    user: AbstractBaseUser,
    prompt: Any,
    verdict: Any,
    answers: dict[str, tuple[ModelVersion, Any]],
) -> DeploymentFeedback:
    """Store an admin's verdict on the two answers: "a"/"b" picks one (a choice, with the
    picked version), "a-up"/"a-down"/"b-up"/"b-down" rates one (thumbs, with its version).
    `answers` maps "a" and "b" to (version, the text it answered). Both versions are kept in
    the metadata, so a choice says what it was chosen over."""
    if verdict not in ("a", "b", "a-up", "a-down", "b-up", "b-down"):
        raise InvalidInput(Problem("verdict", "choose a, b, or a thumb on one of them"))
    side = verdict[0]
    other = "b" if side == "a" else "a"
    metadata = {"versions": {k: v.pk for k, (v, _) in answers.items()}}
    version, text = answers[side]
    if "-" in verdict:
        return feedback_record(
            project=project, kind=DeploymentFeedback.Kind.THUMBS, source=SOURCE, prompt=prompt,
            response=text, rating=verdict.split("-")[1], model_version=version.pk,
            metadata=metadata, user=user,
        )  # fmt: skip
    return feedback_record(
        project=project, kind=DeploymentFeedback.Kind.CHOICE, source=SOURCE, prompt=prompt,
        chosen=text, rejected=answers[other][1], model_version=version.pk,
        metadata=metadata | {"rejected_version": answers[other][0].pk}, user=user,
    )  # fmt: skip
