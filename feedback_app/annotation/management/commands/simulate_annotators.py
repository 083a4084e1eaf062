"""``manage.py simulate_annotators PROJECT``: bots rank every open task by a documented rule."""

from django.core.management.base import BaseCommand, CommandError

from feedback_app.annotation.selectors import project_by_id_or_name
from feedback_app.annotation.simulation import bots_ensure, simulate


class Command(BaseCommand):
    help = (
        "Create bot annotators (bot-1..N, or PREFIX-1..N) in a project and rank its open tasks "
        "through the same services people use. Rule: prefer candidates with more positive than "
        "negative words (see feedback_app/annotation/simulation.py)."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--bots", type=int, default=3)
        parser.add_argument("--noise", type=float, default=0.1, help="chance to swap two groups")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--max-tasks", type=int, default=None)
        parser.add_argument("--prefix", default="bot", help="bots are PREFIX-1 .. PREFIX-N")

    def handle(
        self,
        *args,
        project: str,
        bots: int,
        noise: float,
        seed: int,
        max_tasks,
        prefix: str,
        **options,
    ):
        proj = project_by_id_or_name(project)
        if proj is None:
            raise CommandError(f"project: no project {project!r}")
        if not 1 <= bots <= 100:
            raise CommandError("--bots: between 1 and 100")
        if not 0 <= noise <= 1:
            raise CommandError("--noise: between 0 and 1")
        if not prefix.strip() or len(prefix) > 140:
            raise CommandError("--prefix: between 1 and 140 characters, not only spaces")
        annotators = bots_ensure(project=proj, count=bots, prefix=prefix)
        result = simulate(
            project=proj, annotators=annotators, noise=noise, seed=seed, max_tasks=max_tasks
        )
        self.stdout.write(f"{bots} bots submitted {result.submitted} rankings in {proj.name}.")
