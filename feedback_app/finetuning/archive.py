"""A whole project as one archive file, and back: export on one instance, import on another.

The archive is a zip file (streamed out, never built in memory) holding one JSONL member a
table and `manifest.json` (format name, format version, rows per member). Rows name each other
by their ids on the exporting instance ("refs"); the import gives every row a new id and maps
the refs. Users are named by username. What is exported, and what is not:

- the project's settings, every concrete field of `Project` read generically (fields added
  later travel without a change here), and its members with their roles;
- prompts, tasks (gold orders too), candidates, leases (display order), rankings (groups, ties,
  display order, time spent, rationale, flags, when), dropped rankings, more-votes requests,
  demonstrations (written and edited), deployment feedback;
- model lineage (versions with parent, stage, metrics, weights path as written), jobs
  (metadata only) and dataset snapshots (metadata only: content hash, counts, policy, path);
- NOT the weights files nor the snapshots' files (their paths are kept as written), nor what is
  derived from the above (the quality report, the review queue: recomputed), nor the audit log
  (it belongs to the instance; the import and the export are recorded in it).

Stored HTML is never read from an archive: it carries a keyed MAC (common/rendering.py) that
another instance's key cannot vouch for, so the text is imported and rendered again here
(`render()`, the models' one renderer); an archive with an HTML field is refused.

The import is one transaction: a bad archive answers a 400 naming the member, the line and the
field, and nothing is written.
"""

from __future__ import annotations

import io
import lzma
import math
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC
from typing import IO, Any

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from feedback_app.annotation.importing import MAX_TEXT, prompt_hash
from feedback_app.annotation.models import (
    Assignment,
    Candidate,
    Demonstration,
    Prompt,
    Ranking,
    Task,
)
from feedback_app.annotation.quality_refresh import send_refresh
from feedback_app.annotation.rankings import MAX_RATIONALE, check_ranking, payload_hash
from feedback_app.annotation.task_writer import tasks_refresh
from feedback_app.common.errors import Conflict, InvalidInput, Problem
from feedback_app.common.instants import parse_instant
from feedback_app.common.storable import character_problem, json_problems
from feedback_app.core.audit import record
from feedback_app.core.models import (
    MAX_GUIDELINES,
    DatasetSnapshot,
    Job,
    Membership,
    ModelVersion,
    Project,
)
from feedback_app.preferences.models import DeploymentFeedback, MoreVotesRequest, RankingDrop

from .models import Round

FORMAT = "rlhf-feedback-project-archive"
VERSION = 1
MANIFEST = "manifest.json"
PROJECT = "project.json"
USER = "user"  # a ref kind: a username, not an id
CHUNK = 1000  # rows a bulk insert
FLUSH_BYTES = 256 * 1024  # compressed bytes the export hands on at a time
MAX_PROBLEMS = 20
# Never exported, refused on import: the HTML is rendered again from the text here.
HTML_FIELDS = frozenset({"html", "render_version", "html_digest"})
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


TABLES = [
    Table("memberships.jsonl", Membership, refs={"user": USER}),
    Table("jobs.jsonl", Job, refs={"retry_of": "jobs", "created_by": USER}, optional=True),
    Table("snapshots.jsonl", DatasetSnapshot, refs={"job": "jobs"}, optional=True),
    Table(
        "model_versions.jsonl",
        ModelVersion,
        refs={"parent": "model_versions", "job": "jobs", "snapshot": "snapshots"},
    ),
    Table("rounds.jsonl", Round, refs={"job": "jobs"}, ids={"model_versions": "model_versions"}),
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
        "ranking_drops.jsonl",
        RankingDrop,
        scope="ranking__task__project",
        refs={"ranking": "rankings", "dropped_by": USER},
    ),
    Table(
        "more_votes.jsonl",
        MoreVotesRequest,
        scope="task__project",
        refs={"task": "tasks", "requested_by": USER},
    ),
    Table(
        "demonstrations.jsonl",
        Demonstration,
        scope="task__project",
        refs={"task": "tasks", "annotator": USER, "edited_from": "candidates"},
    ),
    Table(
        "feedback.jsonl",
        DeploymentFeedback,
        refs={"model_version": "model_versions", "created_by": USER},
    ),
]
MEMBERS = {t.member for t in TABLES} | {MANIFEST, PROJECT}
_BY_MODEL = {t.model: t for t in TABLES}


def _fields(model: type[models.Model]) -> list[models.Field]:
    """The fields a row of `model` carries in the archive (its own id is the row's "id").

    Every concrete field, so fields added later travel too; a foreign key only if it can be
    mapped on another instance (to a member's row or a user), never as a bare id."""
    table = _BY_MODEL.get(model)
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
        if f.is_relation and f.related_model not in _BY_MODEL and not _is_user(f):
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
    if f.is_relation and f.related_model in _BY_MODEL:
        return _BY_MODEL[f.related_model].key
    return None


# --- export ------------------------------------------------------------------------------------


class _Sink(io.RawIOBase):
    """Where the zip writer puts its bytes; the export hands them on a chunk at a time.

    No `tell` or `seek`: zipfile then writes a streamable zip (sizes after each member)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.chunks.append(bytes(b))
        self.size += len(b)
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks, self.size = [], 0
        return out


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC)


class _Usernames(dict):
    """user id -> username, read once each."""

    def __missing__(self, pk: int) -> str:
        name = get_user_model().objects.filter(pk=pk).values_list("username", flat=True).first()
        self[pk] = name
        return name


def _encode(f: models.Field, value: Any, users: _Usernames) -> Any:
    if value is None:
        return None
    if _is_user(f):
        return users[value]
    return value


def _project_row(project: Project, users: _Usernames) -> dict:
    return {f.name: _encode(f, getattr(project, f.attname), users) for f in _project_fields()}


def _table_rows(project: Project, table: Table, through: int, users: _Usernames) -> Iterator[dict]:
    fields = _fields(table.model)
    names = ["id", *(f.attname for f in fields)]
    qs = table.model.objects.filter(**{table.scope: project}, pk__lte=through).order_by("id")
    m2m = [name for name in table.ids if name in {f.name for f in table.model._meta.many_to_many}]
    for values in qs.values_list(*names).iterator(chunk_size=2000):
        row = {"id": values[0]}
        for f, value in zip(fields, values[1:], strict=True):
            row[f.name] = _encode(f, value, users)
        if m2m:
            obj = table.model.objects.get(pk=values[0])
            for name in m2m:
                row[name] = sorted(getattr(obj, name).values_list("pk", flat=True))
        yield row


def archive_stream(project: Project, *, progress: Progress | None = None) -> Iterator[bytes]:
    """The project as a zip archive, yielded a few hundred kB at a time.

    Each member reads rows up to the highest id its table had when the export began, so rows
    written during the export cannot name rows the archive lacks. On PostgreSQL the whole
    export also reads one snapshot (REPEATABLE READ); on SQLite a transaction would take the
    write lock (BEGIN IMMEDIATE) and stop annotators for the length of the export.
    """
    # Inside a caller's transaction (a test, a script) its snapshot rules are kept.
    own = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic() if own else nullcontext():
        if own:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield from _archive_chunks(project, progress)


def _archive_chunks(project: Project, progress: Progress | None) -> Iterator[bytes]:
    through = {t.member: t.model.objects.aggregate(m=models.Max("id"))["m"] or 0 for t in TABLES}
    users = _Usernames()
    sink = _Sink()
    counts: dict[str, int] = {}
    started = timezone.now().timetuple()[:6]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(PROJECT, _dumps(_project_row(project, users)))
        for table in TABLES:
            n = 0
            info = zipfile.ZipInfo(table.member, date_time=started)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as out:
                for row in _table_rows(project, table, through[table.member], users):
                    out.write(_dumps(row) + b"\n")
                    n += 1
                    if sink.size >= FLUSH_BYTES:
                        yield sink.take()
                    if progress is not None and n % CHUNK == 0:
                        progress(table.member, n)
            counts[table.member] = n
            if progress is not None:
                progress(table.member, n)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": timezone.now().isoformat(),
            "project": {"id": project.pk, "name": project.name},
            "members": {member: {"rows": n} for member, n in counts.items()},
            "notes": NOTES,
        }
        zf.writestr(MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    yield sink.take()


def archive_write(project: Project, out: IO[bytes], *, progress: Progress | None = None) -> int:
    """Write the archive to a file; returns its size in bytes."""
    size = 0
    for chunk in archive_stream(project, progress=progress):
        out.write(chunk)
        size += len(chunk)
    return size


# --- import: reading and checking ------------------------------------------------------------


@dataclass
class ImportResult:
    project: Project
    rows: dict[str, int]
    users_created: list[str]
    notes: list[str]


class _Reader:
    """The archive's members, read within the size limits, each problem named."""

    def __init__(self, file: IO[bytes]) -> None:
        try:
            self.zf = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError, EOFError):
            raise InvalidInput(Problem("file", "not a zip archive (export one first)")) from None
        infos = self.zf.infolist()
        names = [i.filename for i in infos]
        if len(names) != len(set(names)):
            raise InvalidInput(Problem("file", "a member appears twice in the archive"))
        unknown = sorted(set(names) - MEMBERS)
        if unknown:
            raise InvalidInput(Problem("file", f"unknown members {unknown[:5]}"))
        total = sum(i.file_size for i in infos)
        limit = settings.ARCHIVE_MAX_UNPACKED_BYTES
        if total > limit:
            raise InvalidInput(
                Problem("file", f"unpacks to {total} bytes, more than the {limit} accepted")
            )
        for info in infos:
            if message := _member_problem(info):
                raise InvalidInput(Problem(info.filename, message))
        self.names = set(names)
        self.unpacked = 0

    def json(self, member: str) -> Any:
        if member not in self.names:
            raise InvalidInput(Problem(member, "missing from the archive"))
        data = self._read_all(member)
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(Problem(member, f"not valid JSON ({exc})")) from None
        if not isinstance(value, dict):
            raise InvalidInput(Problem(member, "must be a JSON object"))
        return value

    def _read_all(self, member: str) -> bytes:
        try:
            with self.zf.open(member) as f:
                data = f.read(settings.ARCHIVE_MAX_LINE_BYTES + 1)
        except _UNREADABLE as exc:
            raise InvalidInput(Problem(member, f"cannot be read ({exc})")) from None
        if len(data) > settings.ARCHIVE_MAX_LINE_BYTES:
            raise InvalidInput(Problem(member, "too large"))
        return data

    def lines(self, member: str) -> Iterator[tuple[int, dict]]:
        """(line number, object) of each line; blank lines are skipped."""
        limit = settings.ARCHIVE_MAX_LINE_BYTES
        try:
            with self.zf.open(member) as f:
                for n, raw in enumerate(_limited_lines(f, limit), start=1):
                    self.unpacked += len(raw)
                    if self.unpacked > settings.ARCHIVE_MAX_UNPACKED_BYTES:
                        raise InvalidInput(Problem(member, "unpacks to more than accepted", n))
                    if len(raw) > limit:
                        raise InvalidInput(Problem(member, f"line longer than {limit} bytes", n))
                    if not raw.strip():
                        continue
                    try:
                        value = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        raise InvalidInput(Problem(member, "not valid JSON", n)) from None
                    if not isinstance(value, dict):
                        raise InvalidInput(Problem(member, "must be a JSON object", n))
                    yield n, value
        except _UNREADABLE as exc:
            raise InvalidInput(Problem(member, f"cannot be read ({exc})")) from None


# What reading a damaged member raises: a bad CRC or a cut file (BadZipFile, EOFError), a
# stream its method cannot decode (zlib.error, LZMAError, OSError from bz2), an encrypted or
# patched member or an unknown method that the header check missed (RuntimeError,
# NotImplementedError), a header that contradicts the directory (BadZipFile, ValueError).
_UNREADABLE = (
    zipfile.BadZipFile,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
)
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member cannot be read, as far as its directory entry tells: encrypted (the export
    never encrypts) or compressed by a method Python cannot decode (99 is AES)."""
    if info.flag_bits & 0x41:  # bit 0: encrypted, bit 6: strong encryption
        return "is encrypted: export the archive again, without a password"
    if info.compress_type not in _METHODS:
        return f"compression method {info.compress_type} is not supported (use deflate)"
    return None


def _limited_lines(f: IO[bytes], limit: int) -> Iterator[bytes]:
    while True:
        raw = f.readline(limit + 1)
        if not raw:
            return
        yield raw


def _check_manifest(reader: _Reader) -> dict:
    manifest = reader.json(MANIFEST)
    if manifest.get("format") != FORMAT:
        raise InvalidInput(Problem(f"{MANIFEST}: format", f"must be {FORMAT!r}"))
    version = manifest.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInput(Problem(f"{MANIFEST}: version", "must be a whole number"))
    if version != VERSION:
        raise InvalidInput(
            Problem(
                f"{MANIFEST}: version",
                f"this instance reads format version {VERSION}; the archive is version {version}",
            )
        )
    members = manifest.get("members")
    if not isinstance(members, dict):
        raise InvalidInput(Problem(f"{MANIFEST}: members", "must be an object"))
    for table in TABLES:
        info = members.get(table.member)
        if info is None:
            if table.optional:
                continue
            raise InvalidInput(Problem(f"{MANIFEST}: members", f"{table.member} is not listed"))
        rows = info.get("rows") if isinstance(info, dict) else None
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise InvalidInput(
                Problem(f"{MANIFEST}: members.{table.member}.rows", "must be a count")
            )
    return manifest


_TEXT = (models.CharField, models.TextField)
# Texts get the limits their own inputs have (README, "Limits on input"); others MAX_TEXT.
_TEXT_LIMITS = {(Project, "guidelines"): MAX_GUIDELINES, (Ranking, "rationale"): MAX_RATIONALE}


def _value(f: models.Field, value: Any) -> tuple[Any, str | None]:
    """The value to store for `f`, or why `value` cannot be stored (strict JSON types)."""
    if value is None:
        return None, None if f.null else "must not be null"
    if isinstance(f, models.JSONField):
        problems = json_problems(value, f.name)
        return value, (problems[0].message if problems else None)
    if isinstance(f, models.BooleanField):
        if not isinstance(value, bool):
            return None, "must be true or false"
    elif isinstance(f, models.DateTimeField):
        try:  # an archive's naive times are UTC
            value = parse_instant(value, naive_in=UTC)
        except ValueError as error:
            return None, str(error)
    elif isinstance(f, models.FloatField):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return None, "must be a number"
        value = float(value)
    elif isinstance(f, models.IntegerField):
        if isinstance(value, bool) or not isinstance(value, int):
            return None, "must be a whole number"
    elif isinstance(f, _TEXT):
        if not isinstance(value, str):
            return None, "must be text"
        limit = _TEXT_LIMITS.get((f.model, f.name), MAX_TEXT)
        if isinstance(f, models.TextField) and len(value) > limit:
            return None, f"at most {limit} characters"
        if message := character_problem(value):
            return None, message
    elif isinstance(f, models.GenericIPAddressField) and not isinstance(value, str):
        return None, "must be text"
    try:
        value = f.to_python(value)
        blank = f.blank and value in f.empty_values
        if f.choices and not blank and value not in {c for c, _ in f.flatchoices}:
            return None, f"must be one of {[c for c, _ in f.flatchoices]}"
        f.run_validators(value)
    except ValidationError as exc:
        return None, "; ".join(exc.messages)
    return value, None


# --- import: writing ---------------------------------------------------------------------------


@dataclass
class _State:
    """What the import has written so far: old id -> new id per member, users by name."""

    maps: dict[str, dict[int, int]] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    users_created: list[str] = field(default_factory=list)
    task_candidates: dict[int, list[int]] = field(default_factory=dict)  # old ids
    assignment_of: dict[int, tuple[int, str]] = field(default_factory=dict)  # old: (task, user)
    member: str = ""
    problems: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS
    found: int = 0  # all of them

    def problem(self, fieldname: str, message: str, line: int | None = None) -> None:
        self.found += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(f"{self.member}: {fieldname}", message, line))

    def raise_if_any(self) -> None:
        if self.problems:
            raise InvalidInput(self.problems)

    def user(self, name: Any, fieldname: str, line: int | None) -> int | None:
        if not isinstance(name, str) or not name or character_problem(name):
            self.problem(fieldname, "must be a username", line)
            return None
        if name not in self.users:
            users = get_user_model()
            pk = users.objects.filter(username=name).values_list("pk", flat=True).first()
            if pk is None:
                try:
                    users._meta.get_field("username").run_validators(name)
                except ValidationError as exc:
                    self.problem(fieldname, "; ".join(exc.messages), line)
                    return None
                user = users(username=name, is_active=False)
                user.set_unusable_password()
                user.save()
                pk = user.pk
                self.users_created.append(name)
            self.users[name] = pk
        return self.users[name]

    def ref(self, key: str, old: Any, fieldname: str, line: int | None) -> int | None:
        if isinstance(old, bool) or not isinstance(old, int):
            self.problem(fieldname, "must be the id of a row in the archive", line)
            return None
        new = self.maps.get(key, {}).get(old)
        if new is None:
            self.problem(fieldname, f"no row {old} in {key}.jsonl", line)
        return new


def _row_values(
    state: _State, table: Table | None, fields: list[models.Field], row: dict, line: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model field values, refs to its own member to set later) of one archived row."""
    known = {f.name for f in fields} | {"id"} | set(table.ids if table else ())
    for key in row:
        if key in HTML_FIELDS:
            state.problem(key, "stored HTML is never imported (the text is rendered again)", line)
        elif key not in known:
            state.problem(key, f"not a field of {(table.model if table else Project).__name__}",
                          line)  # fmt: skip
    values: dict[str, Any] = {}
    later: dict[str, Any] = {}
    for f in fields:
        if f.name not in row:
            if f.has_default() or f.null or isinstance(f, models.DateTimeField):
                continue
            state.problem(f.name, "missing", line)
            continue
        raw = row[f.name]
        ref = _ref_of(table, f)
        if ref is None:
            value, message = _value(f, raw)
            if message:
                state.problem(f.name, message, line)
            values[f.name] = value
        elif raw is None:
            if not f.null:
                state.problem(f.name, "must not be null", line)
            values[f.attname] = None
        elif ref == USER:
            values[f.attname] = state.user(raw, f.name, line)
        elif table is not None and ref == table.key:
            later[f.attname] = raw
        elif table is None:
            later[f.attname] = (ref, raw)  # the project's refs: set once every member is in
        else:
            values[f.attname] = state.ref(ref, raw, f.name, line)
    return values, later


def _old_id(state: _State, table: Table, row: dict, line: int, seen: set[int]) -> int | None:
    old = row.get("id")
    if isinstance(old, bool) or not isinstance(old, int):
        state.problem("id", "must be a whole number", line)
        return None
    if old in seen:
        state.problem("id", f"{old} appears twice", line)
        return None
    seen.add(old)
    return old


def _ids(state: _State, key: str, value: Any, name: str, line: int) -> Any:
    """Map the ids inside a JSON value (a list, or a list of groups) of `key`'s rows."""
    if isinstance(value, list):
        return [_ids(state, key, v, name, line) for v in value]
    return state.ref(key, value, name, line)


def _check_groups(state: _State, task_old: int | None, groups: Any, name: str, line: int) -> bool:
    if task_old is None:
        return False
    try:
        check_ranking(groups, state.task_candidates.get(task_old, []), field=name)
    except InvalidInput as exc:
        for p in exc.problems:
            state.problem(p.field, p.message, line)
        return False
    return True


def _check_order(state: _State, task_old: int | None, order: Any, name: str, line: int) -> bool:
    if task_old is None:
        return False
    expected = sorted(state.task_candidates.get(task_old, []))
    if (
        not isinstance(order, list)
        or any(isinstance(i, bool) or not isinstance(i, int) for i in order)
        or sorted(order) != expected
    ):
        state.problem(name, "must list each candidate of the task once", line)
        return False
    return True


def _prepare(state: _State, table: Table, obj: models.Model, row: dict, line: int) -> None:
    """The per-table rules: texts hashed and rendered here, ids inside JSON checked and mapped."""
    task_old = row.get("task") if isinstance(row.get("task"), int) else None
    if isinstance(obj, Prompt):
        if obj.messages is not None:
            messages = obj.messages
            if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str)
                and len(m["content"]) <= MAX_TEXT and isinstance(m.get("role"), str)
                for m in messages
            ):  # fmt: skip
                state.problem("messages", "must be a list of {role, content} messages", line)
                return
        if obj.content_hash != prompt_hash(obj.text, obj.messages):
            state.problem("content_hash", "does not match the prompt's text", line)
            return
        obj.render()
    elif isinstance(obj, Candidate | Demonstration):
        obj.render()
        if isinstance(obj, Candidate) and task_old is not None:
            state.task_candidates.setdefault(task_old, []).append(row["id"])
    edited = row.get("edited_from")
    ours = state.task_candidates.get(task_old, [])
    if isinstance(obj, Demonstration) and isinstance(edited, int) and edited not in ours:
        state.problem("edited_from", "is not a candidate of the demonstration's task", line)
    if isinstance(obj, Job) and obj.status in Job.ACTIVE:
        # Its worker is on the other instance: here it would be swept or sent again.
        obj.status = Job.Status.CANCELLED
        obj.error = obj.error or f"imported from an archive while {row.get('status')}; not run here"
    if isinstance(obj, Assignment):
        if _check_order(state, task_old, row.get("display_order"), "display_order", line):
            obj.display_order = _ids(state, "candidates", row["display_order"], "display_order",
                                     line)  # fmt: skip
        state.assignment_of[row["id"]] = (task_old, row.get("annotator"))
    if isinstance(obj, Ranking):
        if _check_order(state, task_old, row.get("display_order"), "display_order", line):
            obj.display_order = _ids(state, "candidates", row["display_order"], "display_order",
                                     line)  # fmt: skip
        if _check_groups(state, task_old, row.get("groups"), "groups", line):
            obj.groups = [sorted(g) for g in _ids(state, "candidates", row["groups"], "groups",
                                                  line)]  # fmt: skip
            obj.payload_hash = payload_hash(obj.groups, obj.rationale, obj.flags)
        lease = row.get("assignment")
        if isinstance(lease, int) and state.assignment_of.get(lease) != (
            task_old,
            row.get("annotator"),
        ):
            state.problem("assignment", "is not the lease of this task and annotator", line)


def _write(state: _State, table: Table, batch: list[tuple[int, models.Model, dict]]) -> None:
    """Insert a batch as written in the archive, timestamps included, and keep the new ids.

    A raw insert (what `loaddata` does for fixtures): `bulk_create` would set `created_at` and
    `updated_at` to now, and putting them back with `bulk_update` took 49 of the 72 s of an
    import of 2 000 tasks (bench/archive.py, profiled). Rows without timestamps get now.
    """
    if not batch or state.problems:
        return
    model = table.model
    now = timezone.now()
    objs = []
    for _, obj, _ in batch:
        obj.created_at = obj.created_at or now
        obj.updated_at = obj.updated_at or obj.created_at
        objs.append(obj)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    size = max(connection.ops.bulk_batch_size(fields, objs), 1)
    ids = state.maps.setdefault(table.key, {})
    for lo in range(0, len(batch), size):
        part = batch[lo : lo + size]
        rows = model._base_manager._insert(
            [obj for _, obj, _ in part], fields=fields, returning_fields=[model._meta.pk], raw=True
        )
        for (old, obj, _), (pk,) in zip(part, rows, strict=True):
            obj.pk = pk
            obj._state.adding = False
            ids[old] = pk


def _import_table(
    state: _State, reader: _Reader, table: Table, project: Project, progress: Progress | None
) -> int:
    state.member = table.member
    if table.member not in reader.names:
        if not table.optional:
            raise InvalidInput(Problem(table.member, "missing from the archive"))
        return 0
    fields = _fields(table.model)
    m2m = {f.name for f in table.model._meta.many_to_many}
    seen: set[int] = set()
    batch: list[tuple[int, models.Model, dict]] = []
    later: list[tuple[int, dict[str, Any], int]] = []  # (old id, refs to this member, line)
    m2m_rows: list[tuple[int, str, list, int]] = []
    n = 0
    for line, row in reader.lines(table.member):
        n += 1
        old = _old_id(state, table, row, line, seen)
        found = state.found
        values, own = _row_values(state, table, fields, row, line)
        if state.found > found:
            continue  # a value is wrong: nothing more to check on a row that is not stored
        if table.scope == "project":
            values["project"] = project
        obj = table.model(**values)
        _prepare(state, table, obj, row, line)
        for name in m2m & set(row):
            m2m_rows.append((old, name, row[name], line))
        if old is None:
            continue
        if own:
            later.append((old, own, line))
        batch.append((old, obj, row))
        if len(batch) >= CHUNK:
            _write(state, table, batch)
            batch = []
            if progress is not None:
                progress(table.member, n)
    _write(state, table, batch)
    _set_later(state, table, later, m2m_rows)
    state.raise_if_any()
    if progress is not None:
        progress(table.member, n)
    return n


def _set_later(state: _State, table: Table, later: list, m2m_rows: list) -> None:
    """Refs of a member to itself (parent, retry of), and many-to-many ids, once it is in."""
    if state.problems:
        return
    ids = state.maps.get(table.key, {})
    names = sorted({attname for _, own, _ in later for attname in own})
    updates = []
    for old, own, line in later:
        obj = table.model(pk=ids.get(old))
        for attname in names:
            raw = own.get(attname)
            name = attname.removesuffix("_id")
            setattr(obj, attname, None if raw is None else state.ref(table.key, raw, name, line))
        updates.append(obj)
    if updates and not state.problems:
        table.model.objects.bulk_update(updates, names)
    for old, name, raw, line in m2m_rows:
        target = table.ids.get(name)
        if not isinstance(raw, list) or target is None:
            state.problem(name, "must be a list of ids", line)
            continue
        new = [state.ref(target, v, name, line) for v in raw]
        if not state.problems:
            getattr(table.model(pk=ids[old]), name).set(new)


def _set_gold(state: _State, reader: _Reader) -> None:
    """Gold orders name candidates, which come after tasks: check and map them at the end."""
    state.member = "tasks.jsonl"
    tasks = state.maps.get("tasks", {})
    updates = []
    for line, row in reader.lines("tasks.jsonl"):
        gold = row.get("gold")
        if gold is None:
            continue
        if _check_groups(state, row.get("id"), gold, "gold", line):
            groups = _ids(state, "candidates", gold, "gold", line)
            updates.append(Task(pk=tasks[row["id"]], gold=[sorted(g) for g in groups]))
    state.raise_if_any()
    if updates:
        Task.objects.bulk_update(updates, ["gold"])


def _project_create(state: _State, row: dict, name: str | None) -> tuple[Project, dict]:
    state.member = PROJECT
    fields = _project_fields()
    if name is not None:
        row["name"] = name
    values, refs = _row_values(state, None, fields, row, None)
    state.raise_if_any()
    if Project.objects.filter(name=values.get("name")).exists():
        raise Conflict(
            Problem("name", f"a project named {values.get('name')!r} exists; choose another name")
        )
    project = Project(**values)
    try:
        project.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput(
            [Problem(f"{PROJECT}: {k}", "; ".join(v)) for k, v in exc.message_dict.items()]
        ) from None
    stamps = {k: v for k in ("created_at", "updated_at") if (v := values.get(k)) is not None}
    project.save()
    if stamps:  # save() set them to now; update() keeps the archived ones
        Project.objects.filter(pk=project.pk).update(**stamps)
    return project, refs


def archive_import(
    *,
    file: IO[bytes],
    name: str | None = None,
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
    via: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Create a new project from an archive, all or nothing.

    Checks the manifest first (format, version, sizes), then each member as it writes it, in
    one transaction: any problem (a bad type, a ref to a row the archive lacks, a ranking that
    is not an order of its task's candidates, stored HTML) rolls everything back and is raised
    naming the member, the line and the field. Missing users are created inactive and without
    a usable password (listed in the result). `name` replaces the archive's project name.
    """
    reader = _Reader(file)
    manifest = _check_manifest(reader)
    state = _State()
    try:
        with transaction.atomic():
            project, project_refs = _project_create(state, reader.json(PROJECT), name)
            rows = {}
            for table in TABLES:
                rows[table.member] = _import_table(state, reader, table, project, progress)
                if table.member == "candidates.jsonl":
                    _set_gold(state, reader)
                    state.member = table.member
                listed = manifest["members"].get(table.member, {}).get("rows", 0)
                if rows[table.member] != listed:
                    raise InvalidInput(
                        Problem(
                            table.member,
                            f"has {rows[table.member]} rows; the manifest says {listed}",
                        )
                    )
            _set_project_refs(state, project, project_refs)
            record(
                "project.import",
                actor=actor,
                request=request,
                via=via,
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
    except (IntegrityError, DataError) as exc:
        raise InvalidInput(
            Problem(state.member or "file", f"breaks a rule of the database ({exc})".strip())
        ) from None
    notes = list(NOTES)
    if state.users_created:
        notes.append(
            f"{len(state.users_created)} users did not exist here and were created inactive "
            "without a password: activate or invite them."
        )
    return ImportResult(project, rows, state.users_created, notes)


def _set_project_refs(state: _State, project: Project, refs: dict[str, tuple[str, Any]]) -> None:
    state.member = PROJECT
    for attname, (key, raw) in refs.items():
        setattr(project, attname, state.ref(key, raw, attname.removesuffix("_id"), None))
    state.raise_if_any()
    if refs:
        project.save(update_fields=list(refs))


def _after_import(project: Project) -> None:
    """What a new project's tasks need (counts, planner statistics) and its quality report."""
    tasks_refresh(project)
    send_refresh(project.pk)
