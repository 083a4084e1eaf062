"""Can this value be stored? One answer for every text and JSON value that input reaches.

Pure Python, no Django. What each rule protects against:

- NUL (U+0000): PostgreSQL's text and jsonb cannot hold it.
- An unpaired surrogate (U+D800..U+DFFF, what JSON's ``"\\ud800"`` escape decodes to): it is not
  text, so no database driver can encode it (UnicodeEncodeError on write).
- NaN and infinities (``NaN``, ``1e400``): JSON has none; SQLite's JSON_VALID check and jsonb
  refuse what Python's json module writes for them.
- Integers beyond signed 64 bits: SQLite and PostgreSQL's bigint overflow, and most JSON
  readers lose their precision.
- Deep nesting: Python's json module recurses, so a deep value overflows the stack when it is
  decoded, checked or written again. `loads` catches that; stored values are kept shallow.
- Very long object keys: nobody names a field with a page of text.

Every problem names where it is, as a path (``metadata.a[2]``), so the user can find it.

>>> [str(p) for p in json_problems({"a": [1, float("nan")], "b": "\\x00"}, "metadata")]
['metadata.a[1]: must be a finite number', 'metadata.b: must not contain NUL (\\\\u0000)']
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import InvalidInput, Problem

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Nesting of one stored JSON value (metadata, job parameters): metadata is a few levels deep.
MAX_DEPTH = 32
# Nesting of a whole request body or JSONL line; far below Python's recursion limit (1000),
# and above MAX_DEPTH plus the few levels around a field, so the field's own check names it.
MAX_BODY_DEPTH = 64
MAX_KEY = 200  # characters in an object key
# An id in a URL or query string. 18 digits always fit a signed 64-bit column, so no lookup
# can overflow; a 19-digit id would be beyond 10**18 rows.
ID_DIGITS = 18
ID_PATTERN = f"[0-9]{{1,{ID_DIGITS}}}"
_ID = re.compile(ID_PATTERN)
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: object, *, limit: int, blank: bool = False) -> str | None:
    """Why `value` cannot be stored as text of at most `limit` characters, or None.

    `blank`: whether empty (or whitespace-only) text is allowed.
    """
    if not isinstance(value, str):
        return "must be text"
    if not blank and not value.strip():
        return "must be non-empty text"
    if len(value) > limit:
        return f"at most {limit} characters"
    return character_problem(value)


def character_problem(value: str) -> str | None:
    """Why `value` has characters no database stores (NUL, unpaired surrogates), or None."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000)"
    if not value.isascii() and _SURROGATE.search(value):
        return "must not contain an unpaired surrogate (\\ud800-\\udfff): that is not text"
    return None


def check_text(
    value: object, field: str, *, limit: int, blank: bool = False, line: int | None = None
) -> str:
    """Return `value` if it is storable text, else raise InvalidInput naming `field`."""
    message = text_problem(value, limit=limit, blank=blank)
    if message is not None:
        raise InvalidInput(Problem(field, message, line))
    return value  # type: ignore[return-value]  # text_problem refused anything but str


def label(key: str) -> str:
    """A key as it can appear in a field path: unchanged if it is plain, else quoted in ASCII.

    A key can hold anything, and the path goes back to the user in an error: a surrogate there
    would break the error itself, and a key of a page would make an unreadable path.
    """
    if len(key) <= 40 and key.isprintable() and character_problem(key) is None:
        return key
    short = key if len(key) <= 40 else key[:40] + "..."
    return json.dumps(short)  # ASCII, with escapes


def _join(path: str, key: str) -> str:
    return f"{path}.{label(key)}" if path else label(key)


def _fine(item: Any, depth: int, max_depth: int) -> bool:
    """Whether all of `item` can be stored: the fast answer for the common case, no names.

    Recurses at most `max_depth` levels (it stops at the bound), so it cannot overflow.
    """
    kind = type(item)
    if kind is str:
        return "\x00" not in item and (item.isascii() or _SURROGATE.search(item) is None)
    if kind is int:
        return INT64_MIN <= item <= INT64_MAX
    if kind is float:
        return math.isfinite(item)
    if item is None or kind is bool:
        return True
    if depth >= max_depth:
        return False
    if kind is list:
        for child in item:  # noqa: SIM110 - a plain loop: all() over a generator is slower
            if not _fine(child, depth + 1, max_depth):
                return False
        return True
    if kind is dict:
        for key, child in item.items():
            if (
                type(key) is not str
                or len(key) > MAX_KEY
                or not _fine(key, depth, max_depth)
                or not _fine(child, depth + 1, max_depth)
            ):
                return False
        return True
    return False  # anything else: the walk below says what


def json_problems(
    value: Any,
    path: str = "",
    *,
    line: int | None = None,
    max_depth: int = MAX_DEPTH,
    max_problems: int = 20,
) -> list[Problem]:
    """What in a decoded JSON value cannot be stored, each problem named by its path.

    Most values are fine and `_fine` says so quickly; otherwise a walk without recursion (a
    value may be far deeper than the bound) names each problem. `path` names the value itself
    (``metadata``); a problem at the top of an unnamed value is named ``value``.
    """
    if _fine(value, 0, max_depth):
        return []
    return _walk(value, path, line=line, max_depth=max_depth, max_problems=max_problems)


def _walk(
    value: Any, path: str, *, line: int | None, max_depth: int, max_problems: int
) -> list[Problem]:
    problems: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack and len(problems) < max_problems:
        item, where, depth = stack.pop()
        name = where or "value"
        if isinstance(item, str):
            message = character_problem(item)
            if message:
                problems.append(Problem(name, message, line))
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                problems.append(Problem(name, "must be within signed 64 bits (±2**63)", line))
        elif isinstance(item, float):
            if not math.isfinite(item):
                problems.append(Problem(name, "must be a finite number", line))
        elif isinstance(item, list | tuple | dict):
            if depth >= max_depth:
                # The path down there is all brackets: its start says where to look.
                short = name if len(name) <= 60 else name[:60] + "..."
                problems.append(Problem(short, f"nested deeper than {max_depth} levels", line))
                continue
            if isinstance(item, dict):
                children = []
                for key, child in item.items():
                    if not isinstance(key, str):
                        problems.append(Problem(name, "object keys must be text", line))
                    elif len(key) > MAX_KEY:
                        problems.append(
                            Problem(
                                _join(where, key), f"key longer than {MAX_KEY} characters", line
                            )
                        )
                    elif message := character_problem(key):
                        problems.append(Problem(_join(where, key), f"key {message}", line))
                    else:
                        children.append((child, _join(where, key), depth + 1))
            else:
                children = [(child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item)]
            stack.extend(reversed(children))  # so problems come out in document order
        else:
            problems.append(Problem(name, f"not a JSON value ({type(item).__name__})", line))
    return problems[:max_problems]


def check_json(value: Any, path: str = "", *, max_depth: int = MAX_DEPTH) -> Any:
    """Return `value` if all of it can be stored as JSON, else raise naming each path."""
    problems = json_problems(value, path, max_depth=max_depth)
    if problems:
        raise InvalidInput(problems)
    return value


def too_deep(value: Any, max_depth: int) -> bool:
    """Whether a decoded value nests more than `max_depth` containers.

    Recurses, but never more than `max_depth` levels: it stops there.
    """

    def deeper(item: dict | list, depth: int) -> bool:
        if depth > max_depth:
            return True
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if (kind is dict or kind is list) and deeper(child, depth + 1):
                return True
        return False

    kind = type(value)
    return (kind is dict or kind is list) and deeper(value, 1)


def loads(
    text: str | bytes,
    *,
    field: str = "body",
    line: int | None = None,
    max_depth: int = MAX_BODY_DEPTH,
) -> Any:
    """Decode JSON, or raise InvalidInput naming `field` (and `line`): never RecursionError.

    NaN and Infinity are decoded (as Python's json does) so that `json_problems` can name the
    field they are in; nothing decoded here is stored without that check.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        # Deeper than the interpreter's stack; the stack is unwound by now, nothing is kept.
        value, deep = None, True
    except json.JSONDecodeError as exc:
        message = f"not valid JSON ({exc.msg}, column {exc.colno})"
        raise InvalidInput(Problem(field, message, line)) from None
    except ValueError:  # an integer of more than 4300 digits (sys.get_int_max_str_digits)
        message = "not valid JSON (a number with too many digits)"
        raise InvalidInput(Problem(field, message, line)) from None
    else:
        # Counting brackets is cheap and bounds the depth: most lines and bodies need no walk.
        brackets = text.count("[") + text.count("{") if isinstance(text, str) else max_depth + 1
        deep = brackets > max_depth and too_deep(value, max_depth)
    if deep:
        raise InvalidInput(Problem(field, f"JSON nested deeper than {max_depth} levels", line))
    return value


def is_id(text: str) -> bool:
    """Whether `text` is an id as URLs and cursors carry it: 1 to 18 ASCII digits."""
    return _ID.fullmatch(text) is not None


def in_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX
