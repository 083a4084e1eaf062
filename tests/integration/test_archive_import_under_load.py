"""An archive import through the API while annotators rank, on SQLite: nobody gets a 5xx.

Real parts, as in test_import_under_load.py (the prompt import's version of this test): gunicorn
on the test database, a Celery worker that runs the `import_archive` job, annotators ranking
through the pages and the API. The archive's rows are written a few at a time (a small
ARCHIVE_CHUNK_ROWS, so a small archive takes many chunks), each its own short transaction, so
the annotators' writes go on between them; the project appears when the job succeeds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from feedback_app.accounts.tokens import token_create
from feedback_app.annotation.models import Candidate, Ranking
from feedback_app.annotation.services import prompts_import
from feedback_app.core.models import Job, Membership, Project
from feedback_app.workspace import archive
from tests.conftest import _records
from tests.integration.test_import_under_load import Annotator, web  # noqa: F401 (a fixture)
from tests.workers import wait_for_job

TASKS, K = 240, 3
CHUNK = 40  # rows a transaction: 720 candidates take 18 chunks
ANNOTATORS = 4


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch, settings):
    """Before the web server and the worker start: both read it from the environment."""
    monkeypatch.setenv("ARCHIVE_CHUNK_ROWS", str(CHUNK))
    settings.ARCHIVE_CHUNK_ROWS = CHUNK


def test_an_archive_import_job_beside_annotators_gives_no_5xx(web, start_worker, make_user):  # noqa: F811

    project = Project.objects.create(name="live", candidates_per_task=K, annotations_per_task=3)
    users = [make_user(f"annotator{i}") for i in range(ANNOTATORS)]
    for user in users:
        Membership.objects.create(project=project, user=user)
    prompts_import(project=project, records=_records(TASKS, K, prefix="live"))
    data = b"".join(archive.archive_stream(project))
    admin = make_user("boss", is_staff=True)
    start_worker()

    stop = threading.Event()
    annotators = [
        Annotator(web, project.pk, user, pages=i % 2 == 0, stop=stop)
        for i, user in enumerate(users)
    ]
    for thread in annotators:
        thread.start()
    time.sleep(1)
    token = token_create(user=admin, name="load test", expiry_days=0).key
    response = httpx.post(
        f"{web}/api/v1/projects/import-archive/",
        files={"file": ("live.zip", data, "application/zip")},
        data={"name": "copy"},
        headers={"Authorization": f"Token {token}"},
        timeout=120,
    )
    assert response.status_code == 202, response.text
    job = Job.objects.get(pk=response.json()["id"])
    deadline = time.monotonic() + 300
    while job.status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    stop.set()
    for thread in annotators:
        thread.join(60)

    job = wait_for_job(job, timeout=60)
    assert job.status == "succeeded", job.error
    copy = Project.objects.get(name="copy")
    assert not copy.archived and job.project_id == copy.pk
    assert Candidate.objects.filter(task__project=copy).count() == TASKS * K
    statuses = sum((a.statuses for a in annotators), Counter())
    assert not [s for s in statuses if s >= 500], statuses
    during_the_job = Ranking.objects.filter(
        task__project=project, created_at__gte=job.started_at, created_at__lte=job.finished_at
    )
    assert during_the_job.exists(), "no ranking got in while the job wrote its chunks"
    assert job.progress == 1.0 and job.outputs["rows"]["candidates.jsonl"] == TASKS * K
