"""The demo set-up `make run` creates: users, a project, its prompts. Safe to run again."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from feedback_app.common.auth import user_get_or_create
from feedback_app.core.models import Membership, Project

from . import services
from .importing import parse_jsonl

DEMO_FILE = Path(__file__).parent / "demo_data" / "prompts.jsonl"
LOOP_FILE = Path(__file__).parent / "demo_data" / "loop_prompts.jsonl"
ADMIN = "demo-admin"
ANNOTATORS = ("annotator-1", "annotator-2", "annotator-3")
PROJECT = "Demo: assistant replies"
GUIDELINES = """\
Rank the replies from **best** to **worst** for the person who asked.

1. **Correct** first: a wrong fact or a bug outweighs style.
2. **Helpful**: answers what was asked, completely, without padding.
3. **Safe**: declines only what is harmful, and says why.
4. **Clear**: well organised, code that runs, formatting that helps.

Two replies of the same quality may be **tied** (press `=` before the second number).
Flag *all bad* when none of the replies would be acceptable, and *unsafe* when one could harm.
"""
LOOP_PROJECT = "Demo: the loop"
LOOP_GUIDELINES = """\
These candidates come from a **small model pretrained here in minutes** on Python's own
documentation, so expect odd text. Prefer continuations that are **positive** about what they
describe ("useful", "valid", "simple") over ones about errors and failures, and **varied** text
over repetition. The simulated annotators (`manage.py simulate_annotators`) follow the same rule,
so the whole loop can be clicked through in minutes: rank, build a snapshot, train a reward
model, run DPO, evaluate, promote, and generate the next round from the new model.
"""


@dataclass(frozen=True)
class DemoResult:
    project: Project
    password: str
    imported: int


def demo_password(explicit: str | None) -> tuple[str, bool]:
    """DEMO_PASSWORD if given; else the one kept in var/demo-password; else a new one."""
    if explicit:
        return explicit, False
    path = Path(settings.VAR_DIR) / "demo-password"
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(9)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password, True


@transaction.atomic
def demo_bootstrap(*, password: str, reset_passwords: bool) -> DemoResult:
    """The annotation demo: users, and a project of hand-written prompts and candidates."""
    project, _ = Project.objects.get_or_create(
        name=PROJECT,
        defaults={"guidelines": GUIDELINES, "candidates_per_task": 4, "annotations_per_task": 3},
    )
    for username in (ADMIN, *ANNOTATORS):
        is_admin = username == ADMIN
        # Stored as the login form will look it up (NFKC), as Django's create_user does.
        user, created = user_get_or_create(
            username=username, password=password, is_staff=is_admin, is_superuser=is_admin
        )
        if reset_passwords and not created:
            user.set_password(password)
            user.save()
        role = Membership.Role.ADMIN if is_admin else Membership.Role.ANNOTATOR
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    records = parse_jsonl(DEMO_FILE.read_bytes(), k=project.candidates_per_task)
    result = services.prompts_import(project=project, records=records)
    return DemoResult(project, password, imported=result.created)
