"""The one "can this be stored" checker: what it refuses, how it names it, and its fast path."""

from __future__ import annotations

import doctest
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput
from feedback_app.common.storable import MAX_DEPTH, MAX_KEY, json_problems, loads, text_problem
from tests.hostile import EACH


def test_doctests():
    assert doctest.testmod(storable).failed == 0


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"a": [1, "x\x00"]}, "metadata.a[1]", "NUL"),
        ({"a": {"b": "\ud800"}}, "metadata.a.b", "surrogate"),
        ({"n": [float("nan")]}, "metadata.n[0]", "finite"),
        ({"n": float("-inf")}, "metadata.n", "finite"),
        ({"i": 2**63}, "metadata.i", "64 bits"),
        ({"i": -(2**63) - 1}, "metadata.i", "64 bits"),
        ({"k" * (MAX_KEY + 1): 1}, 'metadata."' + "k" * 40 + '..."', "key longer"),
        ({"a\x00": 1}, 'metadata."a\\u0000"', "key must not contain NUL"),
        (
            {"d": json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))},
            ("metadata.d" + "[0]" * 20)[:60] + "...",
            "deeper",
        ),
    ],
)
def test_each_unstorable_value_is_named_by_its_path(value, field, words):
    problems = json_problems(value, "metadata", line=3)
    assert [(p.field, p.line) for p in problems][:1] == [(field, 3)]
    assert words in problems[0].message
    assert field.isascii(), "a path goes back to the user: it must be encodable"


def test_values_at_the_bounds_are_storable():
    ok = {
        "i": [2**63 - 1, -(2**63)],
        "f": 1e308,
        "k" * MAX_KEY: "tabs\tand\u2028separators\u0085 and \U0001f600",
        "d": json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)),
    }
    assert json_problems(ok) == []


def test_problems_come_in_document_order_and_all_at_once():
    fields = [p.field for p in json_problems({"a": "\x00", "b": [1, 2**70], "c": "\x00"}, "m")]
    assert fields == ["m.a", "m.b[1]", "m.c"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(st.characters(codec=None)),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=MAX_KEY + 2), inner, max_size=3)
    ),
    max_leaves=10,
)


@EACH
@given(value=json_values)
def test_the_fast_path_agrees_with_the_walk_that_names_problems(value):
    walked = storable._walk(value, "", line=None, max_depth=4, max_problems=20)
    assert (walked == []) == storable._fine(value, 0, 4)


def test_text_problem_refuses_only_what_cannot_be_stored_or_is_out_of_bounds():
    assert text_problem("any \x01\x1f\x7f\u2028 text", limit=20) is None
    assert "NUL" in text_problem("a\x00", limit=20)
    assert "surrogate" in text_problem("a\udfff", limit=20)
    assert text_problem("  ", limit=20) == "must be non-empty text"
    assert text_problem("", limit=20, blank=True) is None
    assert text_problem("abc", limit=2) == "at most 2 characters"
    assert text_problem(7, limit=20) == "must be text"


@pytest.mark.parametrize("depth", [65, 999, 1000, 5000, 50_000])
def test_loads_never_raises_recursion_error(depth):
    with pytest.raises(InvalidInput) as info:
        loads("[" * depth + "]" * depth, field="line", line=4)
    assert (info.value.problems[0].field, info.value.problems[0].line) == ("line", 4)
    assert "nested deeper than 64" in info.value.problems[0].message


def test_loads_names_bad_json_and_numbers_beyond_python_s_digit_limit():
    with pytest.raises(InvalidInput, match="body: not valid JSON"):
        loads('{"a": ')
    with pytest.raises(InvalidInput, match="too many digits"):
        loads("1" * 5000)
    assert loads("[" * 64 + "]" * 64) is not None
    assert loads('{"x": NaN}')["x"] != 0  # decoded, so json_problems can name the field


@pytest.mark.parametrize(
    ("text", "ok"),
    [("1", True), ("9" * 18, True), ("9" * 19, False), ("", False), ("\u00b2", False),
     ("\u0663", False), ("-1", False), ("1e3", False), (" 1", False)],
)  # fmt: skip
def test_is_id_takes_ascii_digits_that_fit_64_bits(text, ok):
    assert storable.is_id(text) is ok
