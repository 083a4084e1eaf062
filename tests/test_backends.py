"""The suite runs on the backends the environment names: CI must really use PostgreSQL + Redis."""

import os

from django.conf import settings
from django.db import connection


def test_database_is_the_one_database_url_names():
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    assert connection.vendor == expected


def test_broker_is_the_one_the_environment_names():
    url = (
        os.environ.get("CELERY_BROKER_URL")
        or os.environ.get("REDIS_URL")
        or "filesystem://localhost/"
    )
    assert url == settings.CELERY_BROKER_URL
