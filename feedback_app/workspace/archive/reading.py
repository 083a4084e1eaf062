"""The import's first half: reading the archive within its size limits and checking each
value against its field, every problem named by member, line and field."""

from __future__ import annotations

import lzma
import math
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import IO, Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from feedback_app.annotation.importing import MAX_TEXT
from feedback_app.annotation.models import (
    Ranking,
)
from feedback_app.annotation.rankings import MAX_RATIONALE
from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.common.instants import parse_instant
from feedback_app.common.storable import character_problem, json_problems
from feedback_app.core.models import (
    MAX_GUIDELINES,
    Project,
)

from .format import FORMAT, MANIFEST, VERSION, members, tables


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
        unknown = sorted(set(names) - members())
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
    for table in tables():
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
