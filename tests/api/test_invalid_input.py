"""Malformed rankings and imports: every answer is a 4xx naming a field, and nothing is stored."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_app.annotation.models import Assignment, Candidate, Prompt, Ranking, Task

from .conftest import client_for

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Prompt, Task, Candidate, Assignment, Ranking))


def assert_named_4xx(response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content)
    assert response["Content-Type"] == "application/json"
    errors = response.json()["errors"]
    assert errors and all(isinstance(e["field"], str) and e["field"] for e in errors)


@pytest.fixture
def handed(make_project, alice):
    from feedback_app.annotation import services

    project = make_project(name="H", k=3, overlap=1, n_tasks=1, annotators=[alice])
    assignment = services.task_assign_next(project=project, annotator=alice)
    return assignment.task, sorted(c.pk for c in assignment.task.candidates.all())


def malformed_rankings(ids):
    """Anything but a list of non-empty groups covering each candidate id exactly once."""
    ids_or_junk = st.sampled_from(ids) | st.integers(-5, 10**6) | json_scalars
    groups = st.lists(st.lists(ids_or_junk, max_size=4), max_size=5)
    return (json_values | groups).filter(
        lambda g: (
            not (
                isinstance(g, list)
                and g
                and all(isinstance(x, list) and x for x in g)
                and sorted(i for x in g for i in x if type(i) is int) == ids
                and all(type(i) is int for x in g for i in x)
            )
        )
    )


@pytest.mark.slow
def test_malformed_rankings_are_refused_and_store_nothing(handed, alice):
    task, ids = handed
    client = client_for(alice)
    before = counts()

    @SETTINGS
    @given(ranking=malformed_rankings(ids), rationale=json_values, flags=json_values)
    def check(ranking, rationale, flags):
        body = {"ranking": ranking, "rationale": rationale, "flags": flags}
        assert_named_4xx(client.post(f"/api/v1/tasks/{task.pk}/ranking/", body, format="json"))
        assert counts() == before

    check()


def prompt_like():
    message = st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "robot", ""]),
            "content": st.text(),
        }
    )
    return st.text(max_size=20) | st.lists(message, max_size=3) | json_values


@pytest.mark.slow
def test_malformed_imports_are_refused_and_store_nothing(make_project, make_user):
    project = make_project(name="I", k=2, n_tasks=1)
    client = client_for(make_user("root", is_staff=True))
    before = counts()
    bad_item = st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"prompt": prompt_like()},
            optional={
                "candidates": json_values | st.lists(st.text(max_size=5), min_size=1, max_size=4),
                "metadata": json_values,
                "id": json_values,
                "promt": st.text(),
            },
        ),
    )
    # One valid prompt next to bad ones: all or nothing means it is not stored either.
    good = {"prompt": "a perfectly fine prompt"}

    @SETTINGS
    @given(items=st.lists(bad_item, min_size=1, max_size=4), where=st.integers(0, 4))
    def check(items, where):
        body = [*items[:where], good, *items[where:]]
        response = client.post(f"/api/v1/projects/{project.pk}/prompts/", body, format="json")
        if response.status_code == 201:
            # Hypothesis found items that are valid after all: undo so the counts still hold.
            Prompt.objects.filter(project=project).exclude(content_hash__in=keep).delete()
            return
        assert_named_4xx(response)
        assert counts() == before

    keep = list(Prompt.objects.filter(project=project).values_list("content_hash", flat=True))
    check()

    @SETTINGS
    @given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
    def check_jsonl(raw):
        response = client.generic(
            "POST", f"/api/v1/projects/{project.pk}/prompts/", raw, content_type="application/jsonl"
        )
        if response.status_code == 201:
            Prompt.objects.filter(project=project).exclude(content_hash__in=keep).delete()
            return
        assert_named_4xx(response)
        assert counts() == before

    check_jsonl()
