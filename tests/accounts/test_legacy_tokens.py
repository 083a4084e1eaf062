"""A database from before hashing: each plaintext authtoken key becomes a hashed token that
still authenticates with the same header, and the plaintext table is gone."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

LEGACY_KEY = "0123456789abcdef0123456789abcdef01234567"  # DRF's format: 40 hex characters


def _make_legacy_table(user_id: int) -> None:
    """authtoken_token as rest_framework.authtoken's migrations left it, with one key."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {quote('authtoken_token')} ({quote('key')} varchar(40) PRIMARY KEY, "
            f"{quote('created')} timestamp with time zone NOT NULL, "
            f"{quote('user_id')} integer NOT NULL UNIQUE REFERENCES {quote('auth_user')} (id))"
        )
        cursor.execute(
            f"INSERT INTO {quote('authtoken_token')} VALUES (%s, %s, %s)",
            [LEGACY_KEY, "2025-01-02 03:04:05+00:00", user_id],
        )


def test_legacy_keys_are_hashed_keep_working_and_leave_no_plaintext(migrator):
    old = migrator.apply_initial_migration(("accounts", "0001_api_token")).apps
    user = old.get_model("auth", "User").objects.create(username="script-owner", password="x")
    _make_legacy_table(user.pk)
    try:
        new = migrator.apply_tested_migration(("accounts", "0002_legacy_tokens_hashed")).apps
    finally:
        if "authtoken_token" in connection.introspection.table_names():  # failed: clean up
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE authtoken_token")
                pytest.fail("the migration left the plaintext table")

    token = new.get_model("accounts", "ApiToken").objects.get()
    assert token.user_id == user.pk and token.expiry is None
    assert token.created.year == 2025  # the day it was made, kept
    assert LEGACY_KEY not in (token.digest, token.token_key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {LEGACY_KEY}")
    # An endpoint that needs only accounts' tables (the migrator left the other apps' undone).
    response = client.get("/api/v1/auth/tokens/")
    assert response.status_code == 200
    assert [t["name"] for t in response.json()] == ["token from before hashing"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.digest}")
    assert client.get("/api/v1/auth/tokens/").status_code == 401


def test_a_fresh_database_has_no_legacy_table_and_the_migration_does_nothing(migrator):
    migrator.apply_initial_migration(("accounts", "0001_api_token"))
    new = migrator.apply_tested_migration(("accounts", "0002_legacy_tokens_hashed")).apps
    assert not new.get_model("accounts", "ApiToken").objects.exists()
