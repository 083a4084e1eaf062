"""Rules about a project that depend on its tasks, for every interface that edits a project.

The API's serializer and the Django admin both call these, so neither can break them.
"""

from __future__ import annotations

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core.models import Project

from .models import Task


def check_candidates_per_task(project: Project | None, k: int) -> int:
    """K may change only while the project has no tasks: every task holds exactly K candidates
    (imported or generated), and a ranking orders all of them, so another K would orphan them.
    """
    if project is None or project.pk is None or k == project.candidates_per_task:
        return k
    tasks = Task.objects.filter(project_id=project.pk).count()
    if tasks:
        raise InvalidInput(
            Problem(
                "candidates_per_task",
                f"fixed once the project has tasks: its {tasks} tasks have "
                f"{project.candidates_per_task} candidates each",
            )
        )
    return k
