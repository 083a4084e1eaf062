"""The archive's format: its members (one JSONL table each), what a row of each carries, and
how rows name each other (refs). The export and the import both read it from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.contrib.auth import get_user_model
from django.db import models

from feedback_app.annotation.models import HTML_FIELDS as STORED_HTML_FIELDS
from feedback_app.annotation.models import (
    Assignment,
    Candidate,
    Demonstration,
    Prompt,
    Ranking,
    Task,
)
from feedback_app.core.models import (
    DatasetSnapshot,
    Job,
    Membership,
    ModelVersion,
    Project,
)

FORMAT = "rlhf-feedback-project-archive"
VERSION = 1
MANIFEST = "manifest.json"
PROJECT = "project.json"
USER = "user"  # a ref kind: a username, not an id
CHUNK = 1000  # rows a bulk insert
FLUSH_BYTES = 256 * 1024  # compressed bytes the export hands on at a time
MAX_PROBLEMS = 20
# Never exported, refused on import: the HTML is rendered again from the text here.
HTML_FIELDS = frozenset(STORED_HTML_FIELDS)
NOTES = [
    "Model weights and snapshot files are not in the archive: their paths are kept as written.",
    "Users are named by username; the import creates missing ones inactive, without a password.",
]

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class Table:
    """One JSONL member: a model, where its rows hang off the project, and its refs.

    `refs`: foreign key name -> the member whose ids it holds, or USER. A ref to its own member
    (a parent, a retry) is set once the whole member is in. `ids`: JSON fields holding ids of
    another member's rows (a ranking's groups hold candidate ids).
    """

    member: str
    model: type[models.Model]
    scope: str = "project"
    refs: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    optional: bool = False

    @property
    def key(self) -> str:
        return self.member.removesuffix(".jsonl")


_TABLES = [
    Table("memberships.jsonl", Membership, refs={"user": USER}),
    Table("jobs.jsonl", Job, refs={"retry_of": "jobs", "created_by": USER}, optional=True),
    Table("snapshots.jsonl", DatasetSnapshot, refs={"job": "jobs"}, optional=True),
    Table(
        "model_versions.jsonl",
        ModelVersion,
        refs={"parent": "model_versions", "job": "jobs", "snapshot": "snapshots"},
    ),
    Table("prompts.jsonl", Prompt),
    Table("tasks.jsonl", Task, refs={"prompt": "prompts"}, ids={"gold": "candidates"}),
    Table(
        "candidates.jsonl",
        Candidate,
        scope="task__project",
        refs={"task": "tasks", "model_version": "model_versions"},
    ),
    Table(
        "assignments.jsonl",
        Assignment,
        scope="task__project",
        refs={"task": "tasks", "annotator": USER},
        ids={"display_order": "candidates"},
    ),
    Table(
        "rankings.jsonl",
        Ranking,
        scope="task__project",
        refs={"task": "tasks", "annotator": USER, "assignment": "assignments"},
        ids={"groups": "candidates", "display_order": "candidates"},
    ),
    Table(
        "demonstrations.jsonl",
        Demonstration,
        scope="task__project",
        refs={"task": "tasks", "annotator": USER, "edited_from": "candidates"},
    ),
]


# The tables of the apps above the workspace (rounds, ranking drops, more-votes requests,
# deployment feedback) are registered by those apps when Django starts (their AppConfig.ready):
# the workspace may not import them (pyproject.toml, the layers contract), and they know where
# their rows belong among the others.


def table_register(table: Table, *, after: str) -> None:
    """Let `table`'s rows travel in the archive, right after the member `after` (a ref names a
    member written before it). Registering the same member again changes nothing."""
    if any(t.member == table.member for t in _TABLES):
        return
    at = next(i for i, t in enumerate(_TABLES) if t.member == after)
    _TABLES.insert(at + 1, table)


def tables() -> list[Table]:
    """The members in the order they are written and read (refs point backwards)."""
    return list(_TABLES)


def members() -> set[str]:
    return {t.member for t in _TABLES} | {MANIFEST, PROJECT}


def _by_model() -> dict[type[models.Model], Table]:
    return {t.model: t for t in _TABLES}


def _fields(model: type[models.Model]) -> list[models.Field]:
    """The fields a row of `model` carries in the archive (its own id is the row's "id").

    Every concrete field, so fields added later travel too; a foreign key only if it can be
    mapped on another instance (to a member's row or a user), never as a bare id."""
    table = _by_model().get(model)
    return [
        f
        for f in model._meta.concrete_fields
        if f.name not in ("id", "project")
        and f.name not in HTML_FIELDS
        and (not f.is_relation or _ref_of(table, f) is not None)
    ]


def _project_fields() -> list[models.Field]:
    """Project's settings: every concrete field but the id, read generically (so fields other
    work adds travel too); a relation is kept only if it points at a member or a user."""
    out = []
    for f in Project._meta.concrete_fields:
        if f.name == "id":
            continue
        if f.is_relation and f.related_model not in _by_model() and not _is_user(f):
            continue
        out.append(f)
    return out


def _is_user(f: models.Field) -> bool:
    return f.is_relation and f.related_model is get_user_model()


def _ref_of(table_or_none: Table | None, f: models.Field) -> str | None:
    if _is_user(f):
        return USER
    if table_or_none is not None and f.name in table_or_none.refs:
        return table_or_none.refs[f.name]
    by_model = _by_model()
    if f.is_relation and f.related_model in by_model:
        return by_model[f.related_model].key
    return None


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC)
