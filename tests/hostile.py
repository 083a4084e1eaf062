"""Hypothesis strategies for the input that used to reach the database and fail there (issue 9).

Each *hostile* value is one no field may accept: nesting deeper than any bound, an unpaired
surrogate, NUL, NaN or an infinity, an integer beyond signed 64 bits, an object key longer than
any bound. Text around them carries other control characters (and U+2028, U+2029, U+0085), which
are allowed, so a check that refuses too much shows up as well. A test puts one into a
valid payload (`put`), so the payload is refused because of it and nothing else; `every_case`
tries one of each class at every place, then random ones.

JSON is written by `dumps`, which can write what `json.dumps` cannot or will not: NaN and 1e400
as they are sent over the wire, and 6 000 levels of nesting without recursion (`Raw`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_app.common.storable import MAX_KEY


class Raw(str):
    """JSON text written as it is."""


def dumps(value: Any) -> str:
    """JSON text of `value`; strings in ASCII with escapes, so a lone surrogate is `\\ud800`."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


# Allowed characters that often break naive code: controls other than NUL, separators.
noise = st.characters(categories=["Cc"], exclude_characters="\x00") | st.sampled_from(
    ["\u2028", "\u2029", "\u0085", "\t", " "]
)
fine_text = st.text(st.characters(categories=["L", "N", "P", "Zs"]) | noise, max_size=8)


def _text_with(bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(fine_text, bad, fine_text).map("".join)


nul_text = _text_with(st.just("\x00"))
surrogate_text = _text_with(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
huge_int = st.integers(2**63, 2**256) | st.integers(-(2**256), -(2**63) - 1)
non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]).map(Raw)
deep = st.builds(
    lambda n, brackets: Raw(brackets[0] * n + "0" * (brackets[0] == '{"a":') + brackets[1] * n),
    st.sampled_from([65, 100, 999, 1001, 5000]),
    st.sampled_from([("[", "]"), ('{"a":', "}")]),
)
long_key_object = st.integers(MAX_KEY + 1, 3000).map(lambda n: {"k" * n: 1})

# Each alone, and inside a list or an object, where only a walk of the value finds it.
_hostile_leaf = st.one_of(nul_text, surrogate_text, huge_int, non_finite, deep, long_key_object)
hostile = (
    _hostile_leaf | _hostile_leaf.map(lambda v: [1, v]) | _hostile_leaf.map(lambda v: {"x": v})
)
# What can travel in a form or query string (percent-encoded UTF-8 has no lone surrogates).
hostile_text = st.one_of(
    nul_text,
    huge_int.map(str),
    st.integers(19, 5000).map(lambda n: "9" * n),
    st.sampled_from(["NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-1", "\u00b2", "0x1f"]),
)
# Not an id in a URL: too many digits, or no ASCII digits, or a sign or exponent.
hostile_id = st.one_of(
    st.integers(19, 300).map(lambda n: "9" * n),
    st.integers(10**18, 2**200).map(str),
    st.sampled_from(["\u00b2", "\u0663", "-1", "1e3", "0x1", "1.0", "%00", "%F0%9F%98%80"]),
)


# Dates and times at the ends of what Python's datetime holds (years 1 and 9999), with offsets
# up to a day either way: converting one to UTC (what every query does) can leave the range.
edge_day = st.dates(date(1, 1, 1), date(1, 1, 2)) | st.dates(date(9999, 12, 30), date(9999, 12, 31))
_offset = st.sampled_from(["", "Z"]) | st.builds(
    lambda sign, minutes: f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
    st.sampled_from("+-"),
    st.integers(0, 24 * 60 - 1),
)
edge_instant = st.builds(
    lambda day, at, offset: f"{day.isoformat()}T{at.isoformat()}{offset}",
    edge_day,
    st.times(),
    _offset,
)
INSTANT_EXAMPLES = [
    "9999-12-31T23:59:59-12:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+14:00",  # year 0 in UTC
    "9999-12-31T23:59:59.999999-00:01",
    "0001-01-01T00:00:00.000001+00:01",
    "2026-02-30T00:00:00Z",  # no such day
    "2026-01-01T24:00:00Z",  # no such time
    "10000-01-01T00:00:00Z",
    "0000-12-31T00:00:00Z",
]


def instant_fits(text: str) -> bool:
    """Whether `text` names a time that exists and lies within years 1..9999 in UTC: the one
    kind of date-time value a filter must accept."""
    try:
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value.astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return True


# One of each class, tried at every place before the random ones: each class is always covered.
EXAMPLES: list[Any] = [
    "a\x00b",
    "a\ud800b",
    2**64,
    -(2**63) - 1,
    Raw("1e400"),
    {"k" * (MAX_KEY + 1): 1},
    [1, {"x": "\u2028\x00"}],
]
# Refused while the body is decoded, wherever they are: tried at one place of each endpoint.
BODY_EXAMPLES: list[Any] = [
    Raw("NaN"),
    Raw("[" * 5000 + "]" * 5000),  # RecursionError in Python's json module
    Raw('{"a":' * 100 + "0" + "}" * 100),  # decodes; deeper than any bound
]
TEXT_EXAMPLES = ["9" * 20, "1e400", "NaN", "inf", "\u00b2", "-1", "a\x00b", "9" * 5000]
ID_EXAMPLES = ["9" * 19, "9" * 3000, "\u00b2", "\u0663", "-1", "1e3", "%00", "1%0A", "%0A%29"]

EACH = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def every_case(
    places: Sequence[Any],
    examples: Sequence[Any],
    values: st.SearchStrategy,
    attempt: Callable[[Any, Any], None],
    *,
    once: Sequence[Any] = (),
    max_examples: int = 25,
) -> None:
    """`attempt(place, value)` for each example at each place (`once` at the first place
    only), then for `max_examples` random draws of both."""
    for value in once:
        attempt(places[0], value)
    for place in places:
        for value in examples:
            attempt(place, value)

    @settings(EACH, max_examples=max_examples)
    @given(place=st.sampled_from(list(places)), value=values)
    def check(place: Any, value: Any) -> None:
        attempt(place, value)

    check()


def put(template: Any, path: tuple, value: Any) -> Any:
    """A copy of `template` with `value` at `path` (keys and indexes)."""
    payload = copy.deepcopy(template)
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return payload
