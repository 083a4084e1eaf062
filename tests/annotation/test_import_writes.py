"""The import writes in short chunks after all the slow work, so it never locks others out."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections

from feedback_app.annotation import services
from feedback_app.annotation.models import Candidate, Prompt, Task
from feedback_app.core.models import Project
from tests.conftest import _records

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_every_text_is_rendered_before_any_transaction_takes_the_write_lock(monkeypatch):
    project = Project.objects.create(name="R", candidates_per_task=2)
    seen: list[bool] = []
    real = services.Prompt.render

    def render(self):
        seen.append(connection.in_atomic_block)
        real(self)

    monkeypatch.setattr(services.Prompt, "render", render)
    services.prompts_import(project=project, records=_records(5, 2, prefix="r"))
    assert seen == [False] * 5


def test_a_large_import_is_written_in_chunks_of_their_own_transactions(monkeypatch):
    project = Project.objects.create(name="C", candidates_per_task=2)
    monkeypatch.setattr(services, "IMPORT_CHUNK", 3)
    monkeypatch.setattr(services, "IMPORT_PAUSE_SECONDS", 0)
    chunks: list[int] = []
    real = services._write_chunk

    def write(project, rows, round):
        chunks.append(len(rows))
        return real(project, rows, round)

    monkeypatch.setattr(services, "_write_chunk", write)
    result = services.prompts_import(project=project, records=_records(8, 2, prefix="c"))
    assert chunks == [3, 3, 2]
    assert (result.created, result.tasks) == (8, 8)
    assert Candidate.objects.filter(task__project=project).count() == 16


def test_a_chunk_that_fails_takes_the_chunks_before_it_back_out(monkeypatch):
    """Fault injection (named so): the third chunk's write raises as a lost connection would."""
    project = Project.objects.create(name="F", candidates_per_task=2)
    monkeypatch.setattr(services, "IMPORT_CHUNK", 2)
    monkeypatch.setattr(services, "IMPORT_PAUSE_SECONDS", 0)
    real = services._write_chunk
    calls = []

    def failing_write(project, rows, round):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("connection lost (injected)")
        return real(project, rows, round)

    monkeypatch.setattr(services, "_write_chunk", failing_write)
    with pytest.raises(OSError):
        services.prompts_import(project=project, records=_records(7, 2, prefix="f"))
    assert not Prompt.objects.filter(project=project).exists()
    assert not Task.objects.filter(project=project).exists()
    # The same file imports whole afterwards: nothing is left half-written.
    monkeypatch.setattr(services, "_write_chunk", real)
    result = services.prompts_import(project=project, records=_records(7, 2, prefix="f"))
    assert (result.created, result.existing) == (7, 0)


def test_prompts_stored_by_a_concurrent_import_meanwhile_are_counted_as_existing(monkeypatch):
    project = Project.objects.create(name="D", candidates_per_task=2)
    records = _records(4, 2, prefix="d")
    monkeypatch.setattr(services, "IMPORT_CHUNK", 2)
    monkeypatch.setattr(services, "IMPORT_PAUSE_SECONDS", 0)
    real = services._write_chunk

    def racing_write(project, rows, round):
        if rows[0][0].content_hash == records[2].content_hash:  # before the second chunk...
            other = services._rendered_record(project, records[2])
            real(project, [other], round)  # ...another import stores its first prompt
        return real(project, rows, round)

    monkeypatch.setattr(services, "_write_chunk", racing_write)
    result = services.prompts_import(project=project, records=records)
    assert (result.created, result.existing) == (3, 1)
    assert Prompt.objects.filter(project=project).count() == 4


@pytest.mark.django_db(transaction=True)
def test_other_writers_commit_between_the_chunks_of_a_running_import():
    """Another writer's transactions get through while a big import is still writing."""
    project = Project.objects.create(name="W", candidates_per_task=2)
    records = _records(1200, 2, prefix="w")
    importing = threading.Event()
    done = threading.Event()
    committed_during_import = []
    errors = []

    def other_writer():
        try:
            importing.wait(10)
            while not done.is_set():
                # One small write transaction: no password hash, whose CPU time under a loaded
                # machine could outlast the whole import and prove nothing.
                user = get_user_model().objects.create(username=f"u{len(committed_during_import)}")
                if not done.is_set():
                    committed_during_import.append(user.pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_writer)
    thread.start()
    real = services._write_chunk

    def write(*args):
        importing.set()
        return real(*args)

    services._write_chunk = write
    try:
        services.prompts_import(project=project, records=records)
    finally:
        services._write_chunk = real
        done.set()
        thread.join(30)
    assert not errors, errors
    assert committed_during_import, "no other write got in while the import was writing"
    assert Prompt.objects.filter(project=project).count() == len(records)
