"""The progress line's statement: what an annotator did in a project, from their own rows.

Plain SQL on the hot path, as annotation/handout.py explains; `selectors.annotator_progress`
combines it with the project's cached count of unfilled tasks (docs/architecture.md says why
"remaining" is an upper bound).
"""

from __future__ import annotations

from functools import cache

from feedback_app.common.db import fetchone, table

from .handout import lease_params
from .models import Assignment, Task


@cache
def _progress_sql() -> str:
    return f"""
SELECT coalesce(sum(CASE WHEN a.status = %(submitted)s THEN 1 ELSE 0 END), 0),
       coalesce(sum(CASE WHEN a.status IN (%(submitted)s, %(skipped)s)
                          AND t.submitted_count < t.target_annotations THEN 1 ELSE 0 END), 0)
FROM {table(Assignment)} a
JOIN {table(Task)} t ON t.id = a.task_id
WHERE a.annotator_id = %(annotator)s AND t.project_id = %(project)s"""


def progress_counts(*, project_id: int, annotator_id: int) -> tuple[int, int]:
    """(submitted, closed on tasks still unfilled): the annotator's own assignments only."""
    done, closed_unfilled = fetchone(
        _progress_sql(), lease_params(project=project_id, annotator=annotator_id)
    )
    return int(done), int(closed_unfilled)
