"""``manage.py import_prompts PROJECT FILE``: load a JSONL file of prompts, all or nothing."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback_app.annotation import services
from feedback_app.annotation.importing import parse_jsonl
from feedback_app.annotation.selectors import project_by_id_or_name
from feedback_app.common.errors import ServiceError
from feedback_app.core.audit import Origin


class Command(BaseCommand):
    help = "Import prompts (and candidates) from a JSONL file into a project, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or name")
        parser.add_argument("file", type=Path)

    def handle(self, *args, project: str, file: Path, **options):
        proj = project_by_id_or_name(project)
        if proj is None:
            raise CommandError(f"project: no project {project!r}")
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"file: cannot read {file}: {exc.strerror}") from exc
        try:
            records = parse_jsonl(data, k=proj.candidates_per_task)
            result = services.prompts_import(project=proj, records=records, origin=Origin.cli())
        except ServiceError as exc:
            lines = "\n".join(f"  {p}" for p in exc.problems)
            raise CommandError(f"nothing imported; fix these:\n{lines}") from exc
        self.stdout.write(
            f"Imported {result.created} prompts ({result.tasks} tasks) into {proj.name}; "
            f"{result.existing} were already there."
        )
