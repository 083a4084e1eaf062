"""The export: a project as a streamed zip archive (never built in memory)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import nullcontext
from typing import IO, Any

import orjson
from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.utils import timezone

from feedback_app.core import access
from feedback_app.core.audit import Origin, record
from feedback_app.core.models import (
    Project,
)

from .format import (
    CHUNK,
    FLUSH_BYTES,
    FORMAT,
    MANIFEST,
    NOTES,
    PROJECT,
    VERSION,
    Progress,
    Table,
    _dumps,
    _fields,
    _is_user,
    _project_fields,
    tables,
)


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


def archive_export(
    *, project: Project, origin: Origin | None = None, progress: Progress | None = None
) -> Iterator[bytes]:
    """A project's admin downloads its archive: checked and recorded (`project.export`) now,
    before the first byte; the bytes follow as the response or the file consumes them."""
    access.check_administers(origin, project)
    record("project.export", origin=origin, project=project, target=project.name)
    return archive_stream(project, progress=progress)


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
    through = {t.member: t.model.objects.aggregate(m=models.Max("id"))["m"] or 0 for t in tables()}
    users = _Usernames()
    sink = _Sink()
    counts: dict[str, int] = {}
    started = timezone.now().timetuple()[:6]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(PROJECT, _dumps(_project_row(project, users)))
        for table in tables():
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


def archive_write(
    project: Project,
    out: IO[bytes],
    *,
    origin: Origin | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the archive to a file; returns its size in bytes. Recorded (`project.export`,
    with the size) once the whole archive is written: a cut export records nothing."""
    access.check_administers(origin, project)
    size = 0
    for chunk in archive_stream(project, progress=progress):
        out.write(chunk)
        size += len(chunk)
    record(
        "project.export", origin=origin, project=project, target=project.name, data={"bytes": size}
    )
    return size
