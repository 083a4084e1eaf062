"""Sealed secrets (common/sealed.py): stored only as Fernet tokens, opened with the configured
key, still opened after a rotation that keeps the old key as a fallback, refused otherwise."""

from __future__ import annotations

import doctest

import pytest

from feedback_app.common import sealed
from feedback_app.common.sealed import SealBroken, seal, unseal


def test_a_sealed_value_is_not_the_plain_one_and_opens_again(settings):
    settings.FIELD_ENCRYPTION_KEY = "field-key-1"
    token = seal("sk-abc")
    assert "sk-abc" not in token and seal("sk-abc") != token  # a fresh token each time
    assert unseal(token) == "sk-abc"
    assert doctest.testmod(sealed).failed == 0


def test_without_a_field_key_the_key_derives_from_secret_key(settings):
    settings.FIELD_ENCRYPTION_KEY = ""
    settings.SECRET_KEY = "secret-one"
    token = seal("sk-abc")
    settings.SECRET_KEY = "secret-two"
    with pytest.raises(SealBroken, match="enter the secret again"):
        unseal(token)
    settings.SECRET_KEY_FALLBACKS = ["secret-one"]
    assert unseal(token) == "sk-abc"


def test_a_rotated_field_key_opens_old_values_only_through_its_fallbacks(settings):
    settings.FIELD_ENCRYPTION_KEY = "old"
    token = seal("sk-abc")
    settings.FIELD_ENCRYPTION_KEY = "new"
    with pytest.raises(SealBroken):
        unseal(token)
    settings.FIELD_ENCRYPTION_KEY_FALLBACKS = ["old"]
    assert unseal(token) == "sk-abc"
    settings.FIELD_ENCRYPTION_KEY = ""  # back to SECRET_KEY: the field keys no longer apply
    with pytest.raises(SealBroken):
        unseal(token)


def test_an_altered_token_is_refused_without_echoing_it(settings):
    token = seal("sk-abc")
    broken = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(SealBroken) as caught:
        unseal(broken)
    assert broken not in str(caught.value) and "sk-abc" not in str(caught.value)
