"""Facts about database errors that every interface needs to answer them rightly."""

from __future__ import annotations

from django.db import OperationalError

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
