import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Several users a test: the default hasher would spend seconds on passwords nobody types."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
