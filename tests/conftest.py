"""Shared fixtures: small projects built through the same import service users go through."""

from __future__ import annotations

import functools
import os

import pytest

pytest_plugins = ["tests.workers", "tests.model_server"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# The markers' one rule: `-m postgres` and `-m browser` select every such test, and nothing
# decides it but this hook. A test that drives Chromium (through the `browser` fixture, or
# `new_page` over it) is marked `browser` whatever its file says; a test marked `postgres` is
# skipped, with the reason, when the default database is not PostgreSQL.
@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: a mark added later would not count
def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    mark_by_rule(items, on_postgres="postgresql" in settings.DATABASES["default"]["ENGINE"])


def mark_by_rule(items, *, on_postgres: bool) -> None:
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
        if item.get_closest_marker("postgres") and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL pointing at PostgreSQL"))


def _records(n_tasks: int, k: int, prefix: str = "prompt"):
    from feedback_app.annotation.importing import check_records

    objects = [
        (
            i + 1,
            {
                "prompt": f"{prefix} {i}",
                "candidates": [f"{prefix} {i} answer {j}" for j in range(k)],
            },
        )
        for i in range(n_tasks)
    ]
    return check_records(objects, k=k)


def throttle_reset() -> None:
    """Forget every API rate-limit count (their own cache: api/throttling.py). Only those keys
    go, so the shared Redis of a PostgreSQL run (its broker too) is left alone."""
    from django.core.cache import caches

    from feedback_app.api.throttling import THROTTLE_CACHE

    throttle = caches[THROTTLE_CACHE]
    if hasattr(throttle, "delete_pattern"):  # django-redis: the prefix is added to the pattern
        throttle.delete_pattern("*")
    else:
        throttle.clear()


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    """Each test starts with no request counted: DRF keys its counts by user id (which SQLite
    hands out again after a rollback) and by address (127.0.0.1 for every test client), so a
    test's requests used to count against a later test's rate."""
    throttle_reset()


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, **extra):
        return django_user_model.objects.create_user(
            username=username, password="pw-" + username, **extra
        )

    return make


def new_project(*, name="P", k=3, overlap=2, n_tasks=4, annotators=(), rationale="optional"):
    """A project with `n_tasks` tasks of `k` candidates and the given annotators."""
    from feedback_app.annotation import services
    from feedback_app.core.models import Membership, Project

    project = Project.objects.create(
        name=name, candidates_per_task=k, annotations_per_task=overlap, rationale=rationale
    )
    for user in annotators:
        Membership.objects.create(project=project, user=user)
    services.prompts_import(project=project, records=_records(n_tasks, k, prefix=name))
    return project


@pytest.fixture
def make_project(make_user):
    """`new_project`, for a test."""
    return new_project


def new_snapshot(root, project, pairs=None, kind="pairs"):
    """A dataset snapshot row whose folder (under `root`) holds `pairs` as train.jsonl
    (test.jsonl empty). For tests that need training data without ranking anything first."""
    from feedback_app.core.models import DatasetSnapshot
    from training.data import write_jsonl

    pairs = pairs or [{"prompt": "p", "chosen": " a", "rejected": " b"}]
    prompts = {str(row.get("prompt", row.get("messages"))) for row in pairs}
    folder = root / f"snapshot-{project.pk}-{DatasetSnapshot.objects.count()}"
    folder.mkdir(parents=True)
    write_jsonl(folder / "train.jsonl", pairs)
    write_jsonl(folder / "test.jsonl", [])
    return DatasetSnapshot.objects.create(
        project=project,
        content_hash=folder.name,
        kind=kind,
        policy={},
        test_fraction=0.0,
        seed=0,
        path=str(folder),
        format="standard",
        counts={"train": len(pairs), "test": 0, "train_prompts": len(prompts)},
    )


@pytest.fixture
def make_snapshot(tmp_path):
    """`new_snapshot` under this test's tmp_path."""
    return functools.partial(new_snapshot, tmp_path)


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")
