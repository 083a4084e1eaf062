"""Projects: create, edit, archive and restore, with the rules that protect their data.

Pages, the API and the Django admin all call these, so none can break a rule:
- K (candidates a task) is fixed once the project has tasks (`check_candidates_per_task`).
- An archived project is read-only (settings, imports, rankings) until it is restored; it is
  hidden from annotators. Projects are never deleted: their rankings and audit events stay.
- The base model is checked by loading its config and tokenizer before it is saved.
- Generation defaults are checked by the generate job's own config (`GenerateConfig`).
Every change is written to the audit log (`core.audit.record`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from feedback_app.annotation.models import Task
from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core import access
from feedback_app.core.access import check_writable
from feedback_app.core.audit import Origin, about_project, changes, project_values, record
from feedback_app.core.models import MAX_GUIDELINES, Membership, Project
from training.config import ConfigError, GenerateConfig
from training.refs import model_ref_problem

# What a project's settings hold; `archived` changes only through archive/restore.
SETTINGS = (
    "name",
    "guidelines",
    "candidates_per_task",
    "annotations_per_task",
    "rationale",
    "demonstrations",
    "gold_rate",
    "lease_seconds",
    "base_model",
    "generation",
    "annotations_max",
    "active_selection",
    "judge_min_agreement",
    "judge_triage",
)
# The generate job's parameters a project may give defaults for (finetuning/params.py).
GENERATION_FIELDS = ("temperature", "top_p", "max_new_tokens", "seed", "stop")
MAX_BASE_MODEL = 500

# The base-model check, swappable in tests that are not about it (loading a tokenizer).
BaseModelCheck = Callable[[str], "str | None"]


def check_candidates_per_task(project: Project | None, k: int) -> int:
    """K may change only while the project has no tasks: every task holds exactly K candidates
    (imported or generated), and a ranking orders all of them, so another K would orphan them.
    """
    if project is None or project.pk is None or k == project.candidates_per_task:
        return k
    tasks = Task.objects.filter(project_id=project.pk).count()
    if tasks:
        raise InvalidInput(
            Problem(
                "candidates_per_task",
                f"fixed once the project has tasks: its {tasks} tasks have "
                f"{project.candidates_per_task} candidates each",
            )
        )
    return k


def check_generation(value: Any) -> dict[str, Any]:
    """Generation defaults: a subset of the generate job's sampling parameters, in its bounds.

    >>> check_generation({"temperature": 0.7, "stop": ["\\n"]})
    {'temperature': 0.7, 'stop': ['\\n']}
    """
    if not isinstance(value, dict):
        raise InvalidInput(Problem("generation", "must be an object of sampling parameters"))
    storable.check_json(value, "generation")
    unknown = sorted(set(value) - set(GENERATION_FIELDS))
    if unknown:
        allowed = ", ".join(GENERATION_FIELDS)
        raise InvalidInput(
            Problem(f"generation.{storable.label(unknown[0])}", f"unknown; one of {allowed}")
        )
    try:
        GenerateConfig.from_dict(value)
    except ConfigError as exc:
        name, _, message = str(exc).partition(": ")
        raise InvalidInput(Problem(f"generation.{name.strip()}", message or str(exc))) from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInput(Problem("generation", str(exc)[:200])) from exc
    return {k: (list(v) if k == "stop" else v) for k, v in value.items()}


def check_base_model(value: str, *, check: BaseModelCheck | None = None) -> str:
    """A hub id or local path whose config and tokenizer load (blank: none yet)."""
    value = storable.check_text(value, "base_model", limit=MAX_BASE_MODEL, blank=True).strip()
    if value:
        problem = (check or model_ref_problem)(value)
        if problem is not None:
            raise InvalidInput(Problem("base_model", problem))
    return value


def _checked(
    project: Project | None, data: dict[str, Any], *, check: BaseModelCheck | None
) -> dict[str, Any]:
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise InvalidInput(Problem(storable.label(unknown[0]), "not a project setting"))
    clean = dict(data)
    if "name" in clean:
        clean["name"] = storable.check_text(clean["name"], "name", limit=200).strip()
        others = Project.objects.filter(name=clean["name"])
        if project is not None and project.pk is not None:
            others = others.exclude(pk=project.pk)
        if others.exists():
            raise InvalidInput(Problem("name", "another project has this name"))
    if "guidelines" in clean:
        clean["guidelines"] = storable.check_text(
            clean["guidelines"], "guidelines", limit=MAX_GUIDELINES, blank=True
        )
    if "candidates_per_task" in clean:
        check_candidates_per_task(project, clean["candidates_per_task"])
    if "generation" in clean:
        clean["generation"] = check_generation(clean["generation"])
    if "base_model" in clean and (project is None or clean["base_model"] != project.base_model):
        clean["base_model"] = check_base_model(clean["base_model"], check=check)
    return clean


def project_create(
    *,
    data: dict[str, Any],
    origin: Origin | None = None,
    admins: tuple[AbstractBaseUser, ...] = (),
    check: BaseModelCheck | None = None,
) -> Project:
    """Create a project from its settings; `admins` become its first admin members."""
    access.check_creates_projects(origin)
    clean = _checked(None, data, check=check)
    project = Project(**clean)
    _full_clean(project)  # the model's bounds, for callers without a form
    with transaction.atomic():
        project.save()
        for user in admins:
            Membership.objects.create(project=project, user=user, role=Membership.Role.ADMIN)
        record("project.create", origin=origin, **about_project(project))
    return project


def project_update(
    *,
    project: Project,
    data: dict[str, Any],
    origin: Origin | None = None,
    check: BaseModelCheck | None = None,
) -> Project:
    """Change some settings of a project; the audit log keeps what each was and became."""
    access.check_administers(origin, project)
    check_writable(project)
    with transaction.atomic():
        # Locked: a K change and an import racing must not both pass their checks.
        project = Project.objects.select_for_update().get(pk=project.pk)
        check_writable(project)
        clean = _checked(project, data, check=check)
        before = project_values(project)
        for name, value in clean.items():
            setattr(project, name, value)
        _full_clean(project)
        project.save()
        if changed := changes(before, project_values(project)):
            about = about_project(project, changed=changed)
            record("project.update", origin=origin, **about)
    return project


def project_archive(
    *,
    project: Project,
    archived: bool = True,
    origin: Origin | None = None,
) -> Project:
    """Archive (hide from annotators, make read-only) or restore a project. Idempotent."""
    access.check_administers(origin, project)
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        if project.archived != archived:
            project.archived = archived
            project.save(update_fields=["archived", "updated_at"])
            record(
                "project.archive" if archived else "project.restore",
                origin=origin,
                project=project,
                target=project.name,
            )
    return project


def _full_clean(project: Project) -> None:
    """The model's own bounds (K 2..8, lease length...), as problems naming the field."""
    try:
        project.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput(
            [Problem(field, message) for field, messages in exc.message_dict.items()
             for message in messages]
        ) from exc  # fmt: skip
