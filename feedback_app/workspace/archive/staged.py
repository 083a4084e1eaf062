"""An archive import in two steps, all or nothing without one long transaction.

1. `archive_stage` (at upload, in the request): the cheap checks (the zip's directory, every
   member's header, the manifest, `project.json`), the upload kept in ARCHIVE_UPLOAD_DIR, and the
   new project created *hidden*: archived (no hand-out, not listed with the live projects,
   read-only to every service) and named as it will be, so a name clash is a 409 at once.
2. `archive_import_run` (in a worker's job, or in-process for `project_import`): each member's
   rows checked and written ARCHIVE_CHUNK_ROWS a transaction, so annotators' writes go on
   between chunks (one transaction held every write on SQLite for 6.8 s at 1,100 tasks). At the
   end, in one short transaction, the project takes the archived flag the archive says, the
   import is audited, and it becomes visible.

All or nothing: a problem (named by member, line and field), a cancel (the `progress` callback
raises) or any other error deletes every row the run wrote, in chunks, and the users it created.
The hidden project itself is deleted when nothing points at it (`keep_project=False`, the
command); a job's run keeps it, empty, archived and renamed "... (import failed N)", because the
job row (with its error) hangs off it (core's Job.project cannot be empty).
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction

from feedback_app.annotation.quality_refresh import send_refresh
from feedback_app.annotation.task_writer import tasks_refresh
from feedback_app.common.errors import Conflict, InvalidInput, Problem
from feedback_app.core import access
from feedback_app.core.audit import Origin, record
from feedback_app.core.models import Project

from .format import NOTES, PROJECT, Progress, _project_fields, tables
from .importing import _import_table, _row_values, _set_gold, _State
from .reading import ImportResult, _check_manifest, _Reader

FAILED_SUFFIX = " (import failed {pk})"


@dataclass(frozen=True)
class Staged:
    """An upload that passed the cheap checks, and its hidden project."""

    project: Project
    path: Path  # the kept upload, in ARCHIVE_UPLOAD_DIR
    archived: bool  # what the archive says; set when the import is complete
    rows: dict[str, int]  # rows per member, from the manifest (for a progress bar)


def _keep(file: IO[bytes]) -> Path:
    folder = Path(settings.ARCHIVE_UPLOAD_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.zip"
    with path.open("wb") as out:
        shutil.copyfileobj(file, out, 1024 * 1024)
    return path


def archive_stage(
    *, file: IO[bytes], name: str | None = None, origin: Origin | None = None
) -> Staged:
    """The upload's cheap checks (400s naming the member) and the hidden project; the rows are
    `archive_import_run`'s. Only those who may create projects may (staff)."""
    access.check_creates_projects(origin)
    path = _keep(file)
    try:
        with path.open("rb") as handle:
            reader = _Reader(handle)
            manifest = _check_manifest(reader)
            row = reader.json(PROJECT)
        project, archived = _project_create(_State(), row, name)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    rows = {t.member: manifest["members"].get(t.member, {}).get("rows", 0) for t in tables()}
    return Staged(project, path, archived, rows)


def _project_create(state: _State, row: dict, name: str | None) -> tuple[Project, bool]:
    """The project of `project.json`, hidden (archived) until its rows are in; refs to its own
    rows (an active policy) are set at the end."""
    state.member = PROJECT
    if name is not None:
        row["name"] = name
    values, _refs = _row_values(state, None, _project_fields(), row, None)
    state.raise_if_any()
    if Project.objects.filter(name=values.get("name")).exists():
        raise Conflict(
            Problem("name", f"a project named {values.get('name')!r} exists; choose another name")
        )
    archived = bool(values.pop("archived", False))
    project = Project(**values, archived=True)
    try:
        project.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput(
            [Problem(f"{PROJECT}: {k}", "; ".join(v)) for k, v in exc.message_dict.items()]
        ) from None
    stamps = {k: v for k in ("created_at", "updated_at") if (v := values.get(k)) is not None}
    try:
        project.save()
    except IntegrityError:  # the same name, a moment ago
        raise Conflict(
            Problem("name", "a project with this name exists; choose another name")
        ) from None
    if stamps:  # save() set them to now; update() keeps the archived ones
        Project.objects.filter(pk=project.pk).update(**stamps)
    return project, archived


def archive_import_run(
    *,
    staged: Staged,
    origin: Origin | None = None,
    progress: Progress | None = None,
    keep_project: bool = False,
) -> ImportResult:
    """Write the staged archive's rows into its hidden project in chunks, then show it; on any
    error or cancel, delete what was written (module docstring) and raise it again."""
    project, state = staged.project, _State()
    try:
        with staged.path.open("rb") as handle:
            reader = _Reader(handle)
            manifest = _check_manifest(reader)
            rows = _import_rows(state, reader, manifest, project, progress)
            with transaction.atomic():
                _set_project_refs(state, project, reader.json(PROJECT))
                Project.objects.filter(pk=project.pk).update(archived=staged.archived)
                project.archived = staged.archived
                record(
                    "project.import",
                    origin=origin,
                    project=project,
                    target=project.name,
                    data={
                        "archive_project": manifest.get("project"),
                        "exported_at": manifest.get("exported_at"),
                        "rows": rows,
                        "users_created": state.users_created,
                    },
                )
                transaction.on_commit(lambda: _after_import(project))
    except BaseException as exc:
        _clean_up(state, project, keep=keep_project)
        if isinstance(exc, IntegrityError | DataError):
            raise InvalidInput(
                Problem(state.member or "file", f"breaks a rule of the database ({exc})".strip())
            ) from None
        raise
    finally:
        staged.path.unlink(missing_ok=True)
    notes = list(NOTES)
    if state.users_created:
        notes.append(
            f"{len(state.users_created)} users did not exist here and were created inactive "
            "without a password: activate or invite them."
        )
    return ImportResult(project, rows, state.users_created, notes)


def archive_import(
    *,
    file: IO[bytes],
    name: str | None = None,
    origin: Origin | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Create a new project from an archive, all or nothing, in this process (the command,
    tests, the bench): `archive_stage` then `archive_import_run`."""
    staged = archive_stage(file=file, name=name, origin=origin)
    return archive_import_run(staged=staged, origin=origin, progress=progress)


def _import_rows(
    state: _State, reader: _Reader, manifest: dict, project: Project, progress: Progress | None
) -> dict[str, int]:
    rows = {}
    for table in tables():
        rows[table.member] = _import_table(state, reader, table, project, progress)
        if table.member == "candidates.jsonl":
            _set_gold(state, reader)
            state.member = table.member
        listed = manifest["members"].get(table.member, {}).get("rows", 0)
        if rows[table.member] != listed:
            raise InvalidInput(
                Problem(table.member, f"has {rows[table.member]} rows; the manifest says {listed}")
            )
    return rows


def _set_project_refs(state: _State, project: Project, row: dict[str, Any]) -> None:
    state.member = PROJECT
    _values, refs = _row_values(state, None, _project_fields(), row, None)
    for attname, (key, raw) in refs.items():
        setattr(project, attname, state.ref(key, raw, attname.removesuffix("_id"), None))
    state.raise_if_any()
    if refs:
        project.save(update_fields=list(refs))


def _clean_up(state: _State, project: Project, *, keep: bool) -> None:
    """Delete what the run wrote, newest member first, ARCHIVE_CHUNK_ROWS rows a transaction,
    then the users it created; the project too unless `keep` (then renamed, to free its name)."""
    size = settings.ARCHIVE_CHUNK_ROWS
    for table in reversed(tables()):
        ids = list(state.maps.get(table.key, {}).values())
        for lo in range(0, len(ids), size):
            with transaction.atomic():
                table.model._base_manager.filter(pk__in=ids[lo : lo + size]).delete()
    users = get_user_model().objects.filter(username__in=state.users_created, is_active=False)
    with contextlib.suppress(IntegrityError):
        users.delete()
    if not keep:
        Project.objects.filter(pk=project.pk).delete()
        return
    name = project.name[: 200 - len(FAILED_SUFFIX) - 12] + FAILED_SUFFIX.format(pk=project.pk)
    Project.objects.filter(pk=project.pk).update(name=name, archived=True)


def _after_import(project: Project) -> None:
    """What a new project's tasks need (counts, planner statistics) and its quality report."""
    tasks_refresh(project)
    send_refresh(project.pk)
