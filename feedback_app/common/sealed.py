"""Secrets the app must keep and use but never show: sealed with Fernet (AES-128-CBC and
HMAC-SHA256, `cryptography`) before they are stored, opened only where they are used.

The key comes from the FIELD_ENCRYPTION_KEY setting (any string: the Fernet key is derived
from it), else from SECRET_KEY, each with its own purpose tag, so the sealing key opens nothing
else signed with the secret. FIELD_ENCRYPTION_KEY_FALLBACKS (and, without a field key, Django's
SECRET_KEY_FALLBACKS) still open what older keys sealed: rotating a key must not lose every
stored secret. A sealed value is text (Fernet's token) a TextField holds.

>>> from django.conf import settings
>>> token = seal("sk-1")
>>> token != "sk-1" and unseal(token)
'sk-1'
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

_PURPOSE = b"feedback_app.sealed.v1"


class SealBroken(ValueError):
    """A sealed value no configured key opens (the key changed, or the value was altered)."""


def _fernet_key(secret: str) -> bytes:
    digest = hashlib.blake2b(secret.encode(), digest_size=32, person=b"sealed-field").digest()
    return base64.urlsafe_b64encode(hashlib.sha256(_PURPOSE + digest).digest())


def _secrets() -> list[str]:
    """The secrets keys derive from: the current first, then fallbacks."""
    field = getattr(settings, "FIELD_ENCRYPTION_KEY", "")
    if field:
        return [field, *getattr(settings, "FIELD_ENCRYPTION_KEY_FALLBACKS", [])]
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(s)) for s in _secrets()])


def seal(plain: str) -> str:
    """The sealed form of `plain`, to store (a different token each call)."""
    return _fernet().encrypt(plain.encode()).decode("ascii")


def unseal(token: str) -> str:
    """The plain value of a sealed `token`; SealBroken when no configured key opens it."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise SealBroken(
            "a stored secret could not be opened: FIELD_ENCRYPTION_KEY (or SECRET_KEY) changed "
            "without the old one in its fallbacks; enter the secret again"
        ) from exc
