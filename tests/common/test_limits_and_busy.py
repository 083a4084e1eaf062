"""Too large a body is a 413, a database that stays locked a 503 with Retry-After: never a 500."""

from __future__ import annotations

import json
import sqlite3

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from feedback_app.annotation import handout
from feedback_app.annotation.models import Prompt
from tests.api.conftest import client_for


@pytest.fixture
def admin_and_project(make_project, make_user):
    root = make_user("root", is_staff=True)
    return root, make_project(name="L", k=2, n_tasks=1)


def _jsonl(n: int) -> bytes:
    return b"\n".join(json.dumps({"prompt": f"prompt number {i}"}).encode() for i in range(n))


@pytest.mark.django_db
def test_an_import_over_the_size_limit_is_a_413_naming_the_body_and_stores_nothing(
    admin_and_project, settings
):
    root, project = admin_and_project
    settings.IMPORT_MAX_BYTES = 1000
    before = Prompt.objects.count()
    body = _jsonl(100)
    assert len(body) > 1000
    api = client_for(root).generic(
        "POST", f"/api/v1/projects/{project.pk}/prompts/", body, content_type="application/jsonl"
    )
    assert api.status_code == 413 and api["Content-Type"] == "application/json"
    assert api.json()["errors"][0]["field"] == "body"
    client = client_for(root)
    client.force_login(root)
    page = client.post(
        reverse("annotation:import", args=[project.pk]),
        {"file": SimpleUploadedFile("p.jsonl", body)},
    )
    assert page.status_code == 413 and b"accepted here" in page.content
    assert Prompt.objects.count() == before


@pytest.mark.django_db
def test_an_import_under_the_limit_is_taken_even_when_larger_than_other_bodies(
    admin_and_project, settings
):
    root, project = admin_and_project
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.IMPORT_MAX_BYTES = 100_000
    response = client_for(root).generic(
        "POST",
        f"/api/v1/projects/{project.pk}/prompts/",
        _jsonl(100),
        content_type="application/jsonl",
    )
    assert response.status_code == 201, response.content
    other = client_for(root).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "build_dataset", "params": {"x": "y" * 2000}},
        format="json",
    )
    assert other.status_code == 413


@pytest.fixture
def locked_database(transactional_db):
    """Another process holds the database's write lock; this one waits at most half a second."""
    if connection.vendor == "sqlite":
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        connection.close()
        options = connection.settings_dict["OPTIONS"]
        saved = options.get("timeout")
        options["timeout"] = 0.5

        def hold():
            other.execute("BEGIN IMMEDIATE")

        def release():
            other.execute("ROLLBACK")
            other.close()
            connection.close()
            options["timeout"] = saved

        yield hold, release
    else:
        import psycopg

        from tests.workers import _database_url

        other = psycopg.connect(_database_url(), autocommit=False)

        def hold():
            other.execute("SELECT id FROM annotation_task FOR UPDATE")
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '500ms'")

        def release():
            other.rollback()
            other.close()
            connection.close()

        yield hold, release


def test_a_ranking_page_and_submit_answer_503_with_retry_after_while_the_database_is_locked(
    locked_database, make_project, alice
):

    hold, release = locked_database
    project = make_project(name="B", k=2, n_tasks=2, annotators=[alice])
    handed = handout.task_assign_next(project=project, annotator=alice)
    ids = handed.display_order
    client = client_for(alice)
    client.force_login(alice)
    hold()
    try:
        api = client.post(
            f"/api/v1/tasks/{handed.task_id}/ranking/", {"ranking": [ids]}, format="json"
        )
        page = client.post(
            reverse("annotation:submit", args=[project.pk, handed.task_id]),
            {f"rank-{i}": "1" for i in ids},
        )
    finally:
        release()
    assert api.status_code == 503 and api["Retry-After"] == "5"
    assert api.json()["errors"][0]["field"] == "database"
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert b"Busy" in page.content
    # Nothing was written, and once the lock is gone the same submit goes through.
    ok = client.post(f"/api/v1/tasks/{handed.task_id}/ranking/", {"ranking": [ids]}, format="json")
    assert ok.status_code == 201, ok.content


def test_lock_timeouts_are_told_apart_from_other_database_errors():
    from django.db import OperationalError

    from feedback_app.common.db import is_lock_timeout

    assert is_lock_timeout(OperationalError("database is locked"))
    assert not is_lock_timeout(OperationalError("no such table: x"))
    assert not is_lock_timeout(ValueError("database is locked"))
