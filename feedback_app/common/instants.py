"""Dates and times from input: the one parser every date filter and file reader uses.

Python's datetime holds years 1..9999 in the time zone it is written in, not in UTC, where the
database compares it: `9999-12-31T23:59:59-12:00` is year 10000 in UTC and
`0001-01-01T00:00:00+14:00` is year 0, and converting either raises OverflowError deep in a
query (a 500). So a value is parsed, made aware (a naive one is in the site's time zone) and
converted to UTC here, where a value beyond the range is refused, naming the field:

>>> parse_instant("2026-05-01T12:00:00+02:00").isoformat()
'2026-05-01T10:00:00+00:00'
>>> parse_instant("9999-12-31T23:59:59-12:00")
Traceback (most recent call last):
...
ValueError: out of range: in UTC it must fall between 0001-01-01 and 9999-12-31
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

INVALID = "must be a date and time (ISO 8601, like 2026-05-01T12:00:00Z)"
OUT_OF_RANGE = "out of range: in UTC it must fall between 0001-01-01 and 9999-12-31"


def in_utc(value: datetime, *, naive_in: tzinfo | None = None) -> datetime:
    """`value` as an aware UTC datetime, or ValueError. A naive `value` is in `naive_in`
    (default: the site's time zone)."""
    try:
        if timezone.is_naive(value):
            value = timezone.make_aware(value, naive_in)
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(OUT_OF_RANGE) from None


def parse_instant(raw: object, *, naive_in: tzinfo | None = None) -> datetime:
    """The aware UTC datetime `raw` (ISO 8601 text) names, or ValueError saying what is wrong."""
    if isinstance(raw, datetime):
        return in_utc(raw, naive_in=naive_in)
    if not isinstance(raw, str):
        raise ValueError(INVALID)
    try:
        parsed = parse_datetime(raw.strip())
    except ValueError:  # well formed but no such day or time (2026-02-30)
        parsed = None
    if parsed is None:
        raise ValueError(INVALID)
    return in_utc(parsed, naive_in=naive_in)


def day_start(day: date) -> datetime | None:
    """The instant `day` begins in the site's time zone, or None when that lies beyond the range
    (a bound there excludes nothing, so a filter drops it)."""
    try:
        return in_utc(datetime.combine(day, time.min))
    except ValueError:
        return None


def day_end(day: date) -> datetime | None:
    """The instant the day after `day` begins (an exclusive upper bound), or None (no bound)."""
    return day_start(day + timedelta(days=1)) if day < date.max else None


class InstantField(forms.DateTimeField):
    """A form (and django-filter) field that parses with `parse_instant`."""

    def to_python(self, value: object) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            return parse_instant(value)
        except ValueError as error:
            raise forms.ValidationError(str(error), code="invalid") from None
