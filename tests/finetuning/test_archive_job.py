"""An archive import as a job: written in chunks into a hidden project, progress reported, and
all or nothing however it ends (a cancel or a problem half-way deletes what was written)."""

from __future__ import annotations

import io

import orjson
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from feedback_app.annotation import handout, submit
from feedback_app.annotation.models import Assignment, Candidate, Prompt, Ranking, Task
from feedback_app.core.models import AuditEvent, Job, Project
from feedback_app.finetuning import jobs, kinds
from feedback_app.finetuning.runners import run_import_archive
from feedback_app.workspace import archive

from .test_archive import _member_edit

pytestmark = pytest.mark.django_db

CHUNK = 3  # rows a transaction here: every member of the archive takes several


@pytest.fixture(autouse=True)
def _small_chunks(settings, tmp_path):
    settings.ARCHIVE_CHUNK_ROWS = CHUNK
    settings.ARCHIVE_UPLOAD_DIR = tmp_path / "uploads"


@pytest.fixture
def exported(make_project, make_user) -> bytes:
    """8 tasks of 3 candidates, 4 rankings by someone this instance will not know."""
    ghost = make_user("ghost")
    project = make_project(name="Chunky", k=3, overlap=1, n_tasks=8, annotators=[ghost])
    for _ in range(4):
        a = handout.task_assign_next(project=project, annotator=ghost)
        ids = sorted(Candidate.objects.filter(task_id=a.task_id).values_list("pk", flat=True))
        submit.ranking_submit(task_id=a.task_id, annotator=ghost, groups=[ids[:1], ids[1:]])
    data = b"".join(archive.archive_stream(project))
    project.delete()
    ghost.delete()
    return data


def _upload(data: bytes) -> Job:
    root = get_user_model().objects.create_user("root", is_staff=True)
    client = APIClient()
    client.force_authenticate(root)
    response = client.post(
        "/api/v1/projects/import-archive/", {"file": io.BytesIO(data)}, format="multipart"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["kind"] == "import_archive" and response.json()["status"] == "queued"
    return Job.objects.get(pk=response.json()["id"])


def _rows() -> dict[str, int]:
    models = (Prompt, Task, Candidate, Assignment, Ranking)
    return {m.__name__: m.objects.count() for m in models} | {
        "users": get_user_model().objects.filter(username="ghost").count()
    }


NOTHING = {"Prompt": 0, "Task": 0, "Candidate": 0, "Assignment": 0, "Ranking": 0, "users": 0}


def _run(job: Job, runner=run_import_archive) -> Job:
    jobs.job_execute(job_id=job.pk, worker="test", runners={**kinds.RUNNERS, job.kind: runner})
    job.refresh_from_db()
    return job


def test_the_upload_answers_at_once_with_a_job_and_a_hidden_project_then_the_job_shows_it(
    exported,
):
    job = _upload(exported)
    assert job.project.archived and _rows() == NOTHING  # nothing but the hidden project yet
    job = _run(job)
    assert job.status == "succeeded", job.error
    assert job.progress == 1.0 and job.outputs["rows"]["candidates.jsonl"] == 24
    assert _rows() == {**NOTHING, "Prompt": 8, "Task": 8, "Candidate": 24, "Assignment": 4,
                       "Ranking": 4, "users": 1}  # fmt: skip
    project = Project.objects.get(pk=job.project_id)
    assert not project.archived and project.name == "Chunky"
    assert AuditEvent.objects.filter(action="project.import", project=project).exists()
    assert not list(settings.ARCHIVE_UPLOAD_DIR.glob("*"))  # the upload is gone once read


def test_progress_is_reported_chunk_by_chunk(exported):
    seen: list[tuple[str, int]] = []
    result = archive.archive_import(file=io.BytesIO(exported), progress=lambda m, n: seen.append(
        (m, n)))  # fmt: skip
    candidates = [n for m, n in seen if m == "candidates.jsonl"]
    assert candidates == [0, 3, 6, 9, 12, 15, 18, 21, 24, 24]
    assert result.rows["candidates.jsonl"] == 24


def test_a_cancel_half_way_leaves_nothing_but_the_empty_hidden_project(exported):
    job = _upload(exported)
    calls = []

    def cancelled_after_some_chunks(job, reporter):
        real = reporter.progress_between

        def between(*args, **kwargs):
            bar = real(*args, **kwargs)

            def callback(step, total, metrics):
                calls.append(step)
                return bar(step, total, metrics) or len(calls) >= 12  # the cancel button

            return callback

        reporter.progress_between = between
        return run_import_archive(job, reporter)

    job = _run(job, cancelled_after_some_chunks)
    assert job.status == "cancelled"
    assert max(calls) > CHUNK  # rows had been written before the cancel
    assert _rows() == NOTHING
    project = Project.objects.get()
    assert project.archived and project.name == f"Chunky (import failed {project.pk})"
    assert not AuditEvent.objects.filter(action="project.import").exists()


def test_a_problem_half_way_fails_the_job_naming_it_and_leaves_nothing(exported):
    def spoil(content: bytes) -> bytes:
        lines = content.splitlines()
        row = orjson.loads(lines[-1])
        row["time_spent_ms"] = "slow"
        return b"\n".join([*lines[:-1], orjson.dumps(row)]) + b"\n"

    job = _run(_upload(_member_edit(exported, "rankings.jsonl", spoil)))
    assert job.status == "failed"
    assert "line 4: rankings.jsonl: time_spent_ms: must be a whole number" in job.error
    assert _rows() == NOTHING  # prompts, tasks, candidates and leases were in: deleted


def test_the_command_leaves_no_project_at_all_when_the_archive_is_bad(exported):
    from feedback_app.common.errors import InvalidInput

    bad = _member_edit(exported, "rankings.jsonl", lambda c: c + b"[1]\n")
    with pytest.raises(InvalidInput, match="rankings.jsonl"):
        archive.archive_import(file=io.BytesIO(bad))
    assert _rows() == NOTHING and not Project.objects.exists()
