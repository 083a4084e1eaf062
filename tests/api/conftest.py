"""A small world for API tests: two projects, their annotators, an admin, tokens for each."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

UNTHROTTLED = "1000000/min"


@pytest.fixture(autouse=True)
def _api_settings(settings, tmp_path):
    """No throttling into failures; snapshots in a per-test folder."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": UNTHROTTLED, "anon": UNTHROTTLED},
    }
    settings.SNAPSHOT_DIR = tmp_path / "snapshots"
    # Six users a test: the default hasher would spend seconds on passwords nobody types.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def user_token(user) -> str:
    """A key for `user`, made once per user object (keys are shown once: kept on the object,
    which lives as long as its test, so no key outlives its rolled-back token)."""
    from feedback_app.accounts.tokens import token_create

    if not hasattr(user, "_test_api_key"):
        user._test_api_key = token_create(user=user, name="tests", expiry_days=0).key
    return user._test_api_key


def client_for(user=None, *, token: str | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        token = user_token(user)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@dataclass
class World:
    project_a: object
    project_b: object
    alice: object  # annotator of A
    bob: object  # annotator of B
    dave: object  # admin (by membership) of A
    root: object  # staff
    task_a: object  # leased to alice, not yet ranked
    skip_task_a: object  # to be skipped by alice
    ranking_a: object  # alice's ranking of another task of A
    job_a: object
    snapshot_a: object
    version_a: object
    revoked_token: str
    other_token_id: int  # a live token of carol, who has no role in the matrix
    carol: object  # admin (by membership) of A, with no client in the matrix

    def client(self, role: str) -> APIClient:
        if role == "anonymous":
            return APIClient()
        if role == "revoked":
            return client_for(token=self.revoked_token)
        return client_for(getattr(self, role))


def token_revoke_test_key(user) -> str:
    """A key whose token was made and then revoked."""
    from feedback_app.accounts.tokens import token_create, token_revoke

    created = token_create(user=user, name="revoked", expiry_days=0)
    token_revoke(user=user, token_id=created.token.pk)
    return created.key


def submit_first(project, user):
    """Lease the next task to `user` and rank it (candidates best first by id)."""
    from feedback_app.annotation import handout, submit

    assignment = handout.task_assign_next(project=project, annotator=user)
    ids = sorted(c.pk for c in assignment.task.candidates.all())
    return submit.ranking_submit(
        task_id=assignment.task_id, annotator=user, groups=[[i] for i in ids]
    ).ranking


@pytest.fixture
def world(db, make_project, make_user, make_snapshot, alice, bob) -> World:
    from feedback_app.annotation import handout, services
    from feedback_app.core.models import Job, Membership
    from feedback_app.finetuning.versions import model_register

    dave = make_user("dave")
    root = make_user("root", is_staff=True)
    a = make_project(name="A", k=3, overlap=2, n_tasks=4, annotators=[alice])
    b = make_project(name="B", k=3, overlap=2, n_tasks=2, annotators=[bob])
    Membership.objects.create(project=a, user=dave, role=Membership.Role.ADMIN)
    ranking = submit_first(a, alice)
    skip_task = handout.task_assign_next(project=a, annotator=alice).task
    services.task_skip(task_id=skip_task.pk, annotator=alice)
    task = handout.task_assign_next(project=a, annotator=alice).task
    job = Job.objects.create(project=a, kind="build_dataset", params={})
    snapshot = make_snapshot(a)
    version = model_register(project=a, kind="policy", name="base", weights="/nowhere")
    model_register(project=a, kind="policy", name="v2", weights="/nowhere2", parent=version)
    carol = make_user("carol")
    Membership.objects.create(project=a, user=carol, role=Membership.Role.ADMIN)
    revoked = token_revoke_test_key(carol)
    from feedback_app.accounts.tokens import token_create

    other = token_create(user=carol, name="carol's script", expiry_days=0).token.pk
    return World(
        project_a=a,
        project_b=b,
        alice=alice,
        bob=bob,
        dave=dave,
        root=root,
        task_a=task,
        skip_task_a=skip_task,
        ranking_a=ranking,
        job_a=job,
        snapshot_a=snapshot,
        version_a=version,
        revoked_token=revoked,
        other_token_id=other,
        carol=carol,
    )
