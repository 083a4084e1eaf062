"""Demonstrations: an annotator writes an ideal answer for a task, or edits its best candidate.

The text is untrusted like any other: stored with its sanitised HTML (the one renderer, by the
model's save). Only members who annotate the project write one, and only when the project takes
demonstrations; an edit names a candidate of the same task and must change it. Writing again
replaces the annotator's earlier demonstration of the task (one a task and annotator).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput, NotAllowed, Problem
from feedback_app.core import access

from .importing import MAX_TEXT
from .models import Candidate, Demonstration, Task


def demonstration_submit(
    *,
    task_id: int,
    annotator: AbstractBaseUser,
    text: object,
    edited_from: object = None,
) -> Demonstration:
    """Store (or replace) `annotator`'s demonstration for a task; 4xx naming the field."""
    task = (
        Task.objects.select_related("project")
        .filter(pk=task_id, project__in=access.projects_annotated_by(annotator))
        .first()
    )
    if task is None:
        raise NotAllowed(Problem("task", f"no task {task_id} in your projects"))
    if not task.project.demonstrations:
        raise InvalidInput(Problem("text", "this project does not take demonstrations"))
    text = storable.check_text(text, "text", limit=MAX_TEXT)
    original = None
    if edited_from is not None:
        if (
            isinstance(edited_from, bool)
            or not isinstance(edited_from, int)
            or not storable.in_int64(edited_from)
        ):
            raise InvalidInput(Problem("edited_from", "must be a candidate id or null"))
        original = Candidate.objects.filter(task=task, pk=edited_from).first()
        if original is None:
            raise InvalidInput(
                Problem("edited_from", f"no candidate {edited_from} in task {task_id}")
            )
        if original.text == text:
            raise InvalidInput(Problem("text", "an edit must change the candidate"))
    # update_or_create locks the row it updates and, on a concurrent first write, reads the
    # winner's row instead of failing on the unique constraint; save() renders the HTML.
    demo, _ = Demonstration.objects.update_or_create(
        task=task, annotator=annotator, defaults={"text": text, "edited_from": original}
    )
    return demo
