"""Bulk import over the API: same rules and messages as the import page, all or nothing."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback_app.annotation.importing import parse_jsonl
from feedback_app.annotation.models import Prompt
from feedback_app.common.errors import InvalidInput

from .conftest import client_for


@pytest.fixture
def admin(make_user):
    return make_user("root", is_staff=True)


@pytest.fixture
def project(make_project):
    return make_project(name="A", k=2, n_tasks=1)


def url(project) -> str:
    return f"/api/v1/projects/{project.pk}/prompts/"


def test_json_list_imports_prompts_with_and_without_candidates(project, admin):
    items = [
        {"prompt": "x", "candidates": ["a", {"text": "b", "model": "m"}]},
        {"prompt": [{"role": "user", "content": "hello"}]},
    ]
    response = client_for(admin).post(url(project), items, format="json")
    assert response.status_code == 201
    assert response.json() == {"created": 2, "existing": 0, "tasks": 1}
    again = client_for(admin).post(url(project), items, format="json")
    assert again.json() == {"created": 0, "existing": 2, "tasks": 0}


def test_jsonl_upload_and_raw_body(project, admin):
    data = b'{"prompt": "one"}\n\n{"prompt": "two", "candidates": ["a", "b"]}\n'
    upload = SimpleUploadedFile("p.jsonl", data, content_type="application/jsonl")
    response = client_for(admin).post(url(project), {"file": upload}, format="multipart")
    assert response.status_code == 201 and response.json()["created"] == 2
    raw = client_for(admin).generic(
        "POST", url(project), b'{"prompt": "three"}\n', content_type="application/jsonl"
    )
    assert raw.status_code == 201 and raw.json()["created"] == 1


def test_problems_are_the_import_pages_and_nothing_is_stored(project, admin):
    lines = [{"prompt": "ok"}, {"promt": "typo"}, {"prompt": "y", "candidates": ["only one"]}]
    before = Prompt.objects.count()
    response = client_for(admin).post(url(project), lines, format="json")
    assert response.status_code == 400
    with pytest.raises(InvalidInput) as page:
        parse_jsonl("\n".join(json.dumps(x) for x in lines), k=2)
    expected = [
        {"field": p.field, "message": p.message, "line": p.line} for p in page.value.problems
    ]
    assert response.json()["errors"] == expected
    assert [e["field"] for e in expected] == ["promt", "candidates"]
    assert Prompt.objects.count() == before


def test_body_that_is_not_a_list_names_the_body(project, admin):
    response = client_for(admin).post(url(project), {"prompt": "x"}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "body"
    bad_json = client_for(admin).generic(
        "POST", url(project), b"[{", content_type="application/json"
    )
    assert bad_json.status_code == 400 and bad_json.json()["errors"][0]["field"] == "body"
