"""Database plumbing every layer shares: lock timeouts, and helpers for hand-written SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import OperationalError, connection
from django.db.models import Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime

ModelT = TypeVar("ModelT", bound=Model)

# PostgreSQL's SQLSTATE for a lock not had within `lock_timeout`.
LOCK_NOT_AVAILABLE = "55P03"


def is_lock_timeout(exc: BaseException) -> bool:
    """True when a statement gave up waiting for a lock: the request may simply be retried.

    SQLite says "database is locked" once its busy timeout ran out; PostgreSQL raises
    lock_not_available once ``lock_timeout`` did (both set in settings).
    """
    if not isinstance(exc, OperationalError):
        return False
    if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        return True
    message = str(exc)
    return "database is locked" in message or "database table is locked" in message


# --- Hand-written SQL on the hot path (handout, submit, progress, access) -------------------
# Plain statements that PostgreSQL and SQLite both run; rows come back as model instances so
# callers, templates and serializers cannot tell them from ORM results. docs/architecture.md
# ("The hot path in SQL") says why these few statements are written out.


def sql_params(**values: Any) -> dict[str, Any]:
    """Named parameters, datetimes in the backend's storage form."""
    return {
        name: connection.ops.adapt_datetimefield_value(v) if isinstance(v, datetime) else v
        for name, v in values.items()
    }


def json_param(value: object) -> object:
    return connection.ops.adapt_json_value(value, None)


def json_value(value: object) -> Any:
    # Both backends hand JSON columns back as text (Django loads PostgreSQL's jsonb as text too).
    return json.loads(value) if isinstance(value, str | bytes) else value


def aware(value: datetime | str) -> datetime:
    # PostgreSQL returns aware datetimes; SQLite returns the stored naive UTC text or value.
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def instance(model: type[ModelT], **values: Any) -> ModelT:
    """A model instance as the ORM would load it; fields not given are deferred."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(connection.alias, names, [values[n] for n in names])


def fetchone(sql: str, params: dict[str, Any]) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def table(model: type[Model]) -> str:
    """The model's table, quoted, for hand-written SQL (never a name typed by hand)."""
    return connection.ops.quote_name(model._meta.db_table)


def for_update(sql: str, *, of: str, skip_locked: bool = False) -> str:
    """`sql` locking the rows of alias `of` on PostgreSQL (passing rows others hold locked when
    `skip_locked`). SQLite has no row locks: there BEGIN IMMEDIATE (settings) serialises writers.
    """
    if not connection.features.has_select_for_update:
        return sql
    return f"{sql}\nFOR UPDATE OF {of}{' SKIP LOCKED' if skip_locked else ''}"


def columns(alias: str, model: type[Model], names: Sequence[str]) -> str:
    """`alias.column, ...` of the model's fields `names` (attnames), for a SELECT list."""
    by_attname = {f.attname: f.column for f in model._meta.concrete_fields}
    return ", ".join(f"{alias}.{connection.ops.quote_name(by_attname[n])}" for n in names)
