"""Import a project archive as a job: the workspace's chunked import, with the job's bar and
its cancel button passed down as the progress callback."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core.audit import Origin
from feedback_app.core.models import Job
from feedback_app.workspace.archive import Staged, archive_import_run

from ..reporting import JobCancelled, JobReporter


def run_import_archive(job: Job, reporter: JobReporter) -> dict:
    """Write the staged upload into the job's hidden project (workspace/archive/staged.py); a
    problem, a cancel or a crash deletes what was written and leaves the project empty."""
    path = Path(settings.ARCHIVE_UPLOAD_DIR) / Path(job.params["upload"]).name
    if not path.exists():
        raise InvalidInput(Problem("file", "the upload is gone (imported or failed before): "
                                   "upload the archive again"))  # fmt: skip
    rows: dict[str, int] = job.params.get("rows", {})
    total = max(sum(rows.values()), 1)
    done: dict[str, int] = {}
    bar = reporter.progress_between(0.0, 0.99, label="Rows imported")

    def progress(member: str, n: int) -> None:
        """Called before each member and after each chunk: the bar, and where a cancel stops
        the import (the workspace then deletes what was written)."""
        done[member] = n
        if bar(min(sum(done.values()), total), total, {}):
            raise JobCancelled()

    staged = Staged(job.project, path, job.params.get("archived", False), rows)
    # Recorded as the system on behalf of whoever uploaded it (the upload's request is over).
    origin = Origin(user=job.created_by)
    result = archive_import_run(staged=staged, origin=origin, progress=progress, keep_project=True)
    reporter.stage("Imported", 1.0)
    return {
        "project": result.project.pk,
        "rows": result.rows,
        "users_created": result.users_created,
        "notes": result.notes,
    }
