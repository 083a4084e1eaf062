"""Imports and generated rounds store their tasks through one writer (annotation/task_writer.py):
candidates' HTML stored, the cached count of unfilled tasks forgotten, planner statistics
refreshed on PostgreSQL, once a write."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from feedback_app.annotation import selectors, services
from feedback_app.annotation.models import Candidate, Prompt
from feedback_app.core.models import ModelVersion, Project
from feedback_app.finetuning.rounds import round_store
from tests.conftest import _records

pytestmark = pytest.mark.django_db

ANALYZES = 1 if connection.vendor == "postgresql" else 0


def _analyzes(ctx: CaptureQueriesContext) -> int:
    return sum(q["sql"].lstrip().upper().startswith("ANALYZE") for q in ctx.captured_queries)


def test_a_generated_round_is_written_like_an_import(
    make_project, django_capture_on_commit_callbacks
):
    project = make_project(k=2, n_tasks=2)
    assert selectors.unfilled_task_count(project) == 2  # now cached
    version = ModelVersion.objects.create(project=project, kind="policy", name="v1", weights="w")
    prompts = list(Prompt.objects.filter(project=project))
    generated = [[("**bold** answer", version), ("plain answer", version)]] * len(prompts)
    with (
        CaptureQueriesContext(connection) as ctx,
        django_capture_on_commit_callbacks(execute=True),  # exits first: inside the capture
    ):
        rnd = round_store(
            project=project, prompts=prompts, candidates=generated, versions=[version]
        )
    assert _analyzes(ctx) == ANALYZES
    assert selectors.unfilled_task_count(project) == 4  # the cached 2 was forgotten
    stored = Candidate.objects.filter(task__round=rnd.number)
    assert stored.count() == 4
    assert all(c.html_is_current() for c in stored)
    assert "<strong>bold</strong>" in stored.get(position=0, task__prompt=prompts[0]).html


def test_an_import_in_several_chunks_refreshes_once_after_the_last(
    monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(services, "IMPORT_CHUNK", 2)
    monkeypatch.setattr(services, "IMPORT_PAUSE_SECONDS", 0)
    project = Project.objects.create(name="chunks", candidates_per_task=2)
    with CaptureQueriesContext(connection) as ctx, django_capture_on_commit_callbacks(execute=True):
        result = services.prompts_import(project=project, records=_records(5, 2))
    assert result.tasks == 5
    assert _analyzes(ctx) == ANALYZES
