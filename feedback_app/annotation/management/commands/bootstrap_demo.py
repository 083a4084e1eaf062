"""``manage.py bootstrap_demo``: the demo users and project; prints how to log in."""

import os

from django.core.management.base import BaseCommand

from feedback_app.annotation import demo


class Command(BaseCommand):
    help = "Create (or reuse) the demo users, project and prompts, and print the log-in details."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="URL to print")

    def handle(self, *args, url: str, **options):
        explicit = os.environ.get("DEMO_PASSWORD") or None
        password, new = demo.demo_password(explicit)
        result = demo.demo_bootstrap(password=password, reset_passwords=bool(explicit))
        where = "DEMO_PASSWORD" if explicit else "var/demo-password" + (" (new)" if new else "")
        self.stdout.write(
            f"\nDemo ready: project {result.project.name!r}, {result.imported} new prompts.\n"
            f"  Open      {url}\n"
            f"  Log in as {demo.ADMIN} (admin) or {', '.join(demo.ANNOTATORS)}\n"
            f"  Password  {password}   (from {where})\n"
        )
