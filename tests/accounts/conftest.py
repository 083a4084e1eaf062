"""Account tests: quick password hashing; lockout limits set per test where they matter."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Many logins a test: the default hasher would spend seconds on passwords nobody types.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
