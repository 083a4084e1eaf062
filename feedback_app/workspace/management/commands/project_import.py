"""``manage.py project_import FILE``: a new project from an archive, all or nothing."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback_app.common.errors import ServiceError
from feedback_app.core.audit import Origin
from feedback_app.workspace import archive

from .project_export import _progress_line


class Command(BaseCommand):
    help = (
        "Create a new project from an archive written by `project_export` (or the API), in "
        "this process and in chunks (the API runs the same import as a job): a bad archive "
        "leaves nothing and each problem is named. Users "
        "missing here are created inactive, without a password."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the archive (.zip)")
        parser.add_argument("--name", help="name the new project this (default: as exported)")

    def handle(self, *args, file: Path, name: str | None = None, **options):
        try:
            handle = file.open("rb")
        except OSError as exc:
            raise CommandError(f"file: cannot read {file}: {exc.strerror}") from exc
        try:
            with handle:
                result = archive.archive_import(
                    file=handle, name=name, origin=Origin.cli(), progress=_progress_line("imported")
                )
        except ServiceError as exc:
            sys.stderr.write("\n")
            lines = "\n".join(f"  {p}" for p in exc.problems)
            raise CommandError(f"nothing imported; fix these:\n{lines}") from exc
        sys.stderr.write("\n")
        rows = ", ".join(f"{n} {m.removesuffix('.jsonl')}" for m, n in result.rows.items() if n)
        self.stdout.write(
            f"Imported project {result.project.name} (id {result.project.pk}): {rows}."
        )
        for note in result.notes:
            self.stdout.write(f"Note: {note}")
        if result.users_created:
            self.stdout.write("Users created inactive: " + ", ".join(result.users_created))
