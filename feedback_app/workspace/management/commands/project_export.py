"""``manage.py project_export PROJECT FILE``: the whole project as one archive file."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback_app.annotation.selectors import project_by_id_or_name
from feedback_app.core.audit import Origin
from feedback_app.workspace import archive


class Command(BaseCommand):
    help = (
        "Write a project (settings, members, prompts, tasks, candidates, rankings, "
        "demonstrations, feedback, model lineage, jobs' and snapshots' metadata) to a zip "
        "archive that `project_import` reads on any instance. Weights and snapshot files are "
        "not included (their paths are)."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or name")
        parser.add_argument("file", type=Path, help="the archive to write (.zip)")

    def handle(self, *args, project: str, file: Path, **options):
        proj = project_by_id_or_name(project)
        if proj is None:
            raise CommandError(f"project: no project {project!r}")
        partial = file.with_name(file.name + ".partial")
        try:
            with partial.open("wb") as out:
                size = archive.archive_write(
                    proj, out, origin=Origin.cli(), progress=_progress_line("exported")
                )
            partial.replace(file)  # a cut export never looks like a whole one
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"file: cannot write {file}: {exc.strerror}") from exc
        sys.stderr.write("\n")
        self.stdout.write(f"Wrote {proj.name} to {file} ({size} bytes).")


def _progress_line(verb: str):
    """One line on the terminal, rewritten in place: member and rows so far."""

    def show(member: str, rows: int) -> None:
        sys.stderr.write(f"\r{verb} {member}: {rows} rows\033[K")
        sys.stderr.flush()

    return show
