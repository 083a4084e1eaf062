"""AI judges as members of a project (issue 23): added and removed by an admin like a person.

A judge is a service user that can never sign in (inactive, no usable password), a member with
the annotator role, and a `core.Judge` row saying how to build it: a local causal LM with a
template, one of the project's reward-model versions, or an OpenAI-compatible endpoint. Being an
ordinary member is what lets its rankings be ordinary `Ranking` rows handed out and submitted
by the same services as people's (finetuning/runners/judging.py runs it, as a job).

An endpoint's API key is given one of two ways: the NAME of the environment variable the
workers read it from (`api_key_env`), or the key itself (`api_key`), which is sealed at once
(common/sealed.py) and stored only so (`Judge.api_key_sealed`). It is write-only: no page, API
answer, log line, audit event, export or archive holds it; listings say only whether one is
stored (`has_api_key`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from feedback_app.common import sealed, storable
from feedback_app.common.errors import Conflict, InvalidInput, Problem
from feedback_app.core import access
from feedback_app.core.access import check_writable
from feedback_app.core.audit import Origin, record
from feedback_app.core.models import Judge, Membership, ModelVersion, Project
from training.judges.prompts import check_template

KINDS = tuple(Judge.Kind.values)
MODES = ("logprobs", "generate")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,99}")
_USERNAME = re.compile(r"[\w.@+-]{1,150}")


def judges_of(project: Project) -> QuerySet[Judge]:
    """The project's AI members, listed apart from the people (`members.members_of`)."""
    return (
        Judge.objects.filter(project=project, user__memberships__project=project)
        .select_related("user", "model_version")
        .order_by("user__username")
    )


@dataclass(frozen=True)
class JudgeSpec:
    """What an admin gives to add a judge; only the fields of its kind are read."""

    name: object
    kind: object
    weights: object = ""
    model_version: object = None
    base_url: object = ""
    model_name: object = ""
    api_key_env: object = ""
    api_key: object = ""  # the key itself: sealed before it is stored, never shown again
    template: object = ""
    mode: object = "logprobs"
    tie_threshold: object = 0.0
    unsure_margin: object = 0.0


def _margin(value: object, field: str) -> float:
    """A judge's threshold in its own units: a number from 0 up, or InvalidInput naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1_000:
        raise InvalidInput(Problem(field, "a number, 0 or more"))
    return float(value)


def check_judge(project: Project, spec: JudgeSpec) -> dict:
    """The Judge row's fields from `spec`, or InvalidInput naming the field."""
    name = storable.check_text(spec.name, "name", limit=150).strip()
    if not _USERNAME.fullmatch(name):
        raise InvalidInput(Problem("name", "letters, digits and . @ + - _ only"))
    if spec.kind not in KINDS:
        raise InvalidInput(Problem("kind", f"one of {', '.join(KINDS)}"))
    template = storable.check_text(spec.template or "", "template", limit=20_000, blank=True)
    if template:
        try:
            check_template(template)
        except ValueError as exc:
            raise InvalidInput(Problem("template", str(exc))) from exc
    fields: dict = {
        "kind": spec.kind,
        "template": template,
        "tie_threshold": _margin(spec.tie_threshold, "tie_threshold"),
        "unsure_margin": _margin(spec.unsure_margin, "unsure_margin"),
    }
    if spec.kind == Judge.Kind.CAUSAL_LM:
        fields["weights"] = storable.check_text(spec.weights, "weights", limit=500).strip()
        if spec.mode not in MODES:
            raise InvalidInput(Problem("mode", f"one of {', '.join(MODES)}"))
        fields["mode"] = spec.mode
    elif spec.kind == Judge.Kind.REWARD_MODEL:
        mv = spec.model_version
        if isinstance(mv, str) and storable.is_id(mv):
            mv = int(mv)  # a form's value
        ok = isinstance(mv, int) and not isinstance(mv, bool) and 0 < mv < 2**63
        version = (
            ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.REWARD, pk=mv)
            .first() if ok else None
        )  # fmt: skip
        if version is None:
            raise InvalidInput(Problem("model_version", "a reward model version of this project"))
        fields["model_version"] = version
    else:
        url = storable.check_text(spec.base_url, "base_url", limit=500).strip()
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(Problem("base_url", "must start with http:// or https://"))
        fields["base_url"] = url
        fields["model_name"] = storable.check_text(spec.model_name, "model_name", limit=200)
        env = storable.check_text(spec.api_key_env or "", "api_key_env", limit=100, blank=True)
        if env and not _ENV_NAME.fullmatch(env):
            raise InvalidInput(
                Problem("api_key_env", "the NAME of an environment variable (A-Z, 0-9, _)")
            )
        fields["api_key_env"] = env
        key = storable.check_text(spec.api_key or "", "api_key", limit=1_000, blank=True)
        if key and env:
            raise InvalidInput(
                Problem("api_key", "give the key or the NAME of its variable, not both")
            )
        if key != key.strip() or any(c.isspace() for c in key):
            raise InvalidInput(Problem("api_key", "a key has no spaces or line breaks"))
        fields["api_key_sealed"] = sealed.seal(key) if key else ""
    return {"name": name, **fields}


def judge_add(*, project: Project, spec: JudgeSpec, origin: Origin | None = None) -> Judge:
    """Add an AI member: a service user that cannot sign in, a membership, a Judge row."""
    access.check_administers(origin, project)
    check_writable(project)
    fields = check_judge(project, spec)
    name = fields.pop("name")
    model = get_user_model()
    try:
        with transaction.atomic():
            user = model(username=name, is_active=False)
            user.set_unusable_password()
            user.save()
            Membership.objects.create(project=project, user=user, role=Membership.Role.ANNOTATOR)
            judge = Judge.objects.create(project=project, user=user, **fields)
            record(
                "judge.add",
                origin=origin,
                project=project,
                target=name,
                data={
                    "user_id": user.pk,
                    "kind": judge.kind,
                    "api_key": "sealed" if judge.api_key_sealed else None,
                },
            )
    except IntegrityError as exc:
        raise Conflict(Problem("name", f"{name} is taken: choose another name")) from exc
    return judge


def judge_remove(*, judge: Judge, origin: Origin | None = None) -> None:
    """Take a judge out of its project; its rankings and votes stay, as a person's do."""
    access.check_administers(origin, judge.project)
    check_writable(judge.project)
    with transaction.atomic():
        Membership.objects.filter(project=judge.project, user=judge.user).delete()
        record(
            "judge.remove",
            origin=origin,
            project=judge.project,
            target=judge.user.get_username(),
            data={"user_id": judge.user_id},
        )


def judge_users(project_id: int) -> set[int]:
    """The user ids of every judge the project ever had (their rankings are not people's)."""
    return set(Judge.objects.filter(project_id=project_id).values_list("user_id", flat=True))
