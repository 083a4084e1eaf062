"""``manage.py simulate_annotators PROJECT``: bots rank every open task by a documented rule."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from feedback_app.annotation.models import Membership
from feedback_app.annotation.selectors import project_by_id_or_name
from feedback_app.annotation.simulation import simulate


class Command(BaseCommand):
    help = (
        "Create bot annotators (bot-1..N) in a project and rank its open tasks through the same "
        "services people use. Rule: prefer candidates with more positive than negative words "
        "(see feedback_app/annotation/simulation.py)."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--bots", type=int, default=3)
        parser.add_argument("--noise", type=float, default=0.1, help="chance to swap two groups")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--max-tasks", type=int, default=None)

    def handle(self, *args, project: str, bots: int, noise: float, seed: int, max_tasks, **options):
        proj = project_by_id_or_name(project)
        if proj is None:
            raise CommandError(f"project: no project {project!r}")
        if not 1 <= bots <= 100:
            raise CommandError("--bots: between 1 and 100")
        if not 0 <= noise <= 1:
            raise CommandError("--noise: between 0 and 1")
        users = get_user_model().objects
        annotators = []
        for i in range(1, bots + 1):
            bot, created = users.get_or_create(username=f"bot-{i}")
            if created:
                bot.set_unusable_password()
                bot.save()
            Membership.objects.get_or_create(project=proj, user=bot)
            annotators.append(bot)
        result = simulate(
            project=proj, annotators=annotators, noise=noise, seed=seed, max_tasks=max_tasks
        )
        self.stdout.write(f"{bots} bots submitted {result.submitted} rankings in {proj.name}.")
