"""Creating, listing and revoking API tokens: the one path every token is made by.

A token is knox's: 64 random hex characters, stored as a SHA-512 digest and looked up by its
first 15 characters, so a database dump holds nothing that authenticates. The plaintext is
returned once, by `token_create`, and is nowhere else afterwards. Each service records its
audit event itself (`token.create`, `token.revoke`), given the origin its interface built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from feedback_app.common.errors import InvalidInput
from feedback_app.core.audit import Origin, about_token, record

from .models import ApiToken

NAME_MAX = ApiToken._meta.get_field("name").max_length
# Lifetimes offered on the account page and accepted by the API (`expiry_days`); 0 = never.
EXPIRY_DAYS = {7: "7 days", 30: "30 days", 90: "90 days", 365: "1 year", 0: "never"}
DEFAULT_EXPIRY_DAYS = 90


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    key: str  # the plaintext: show it once, store it nowhere


def check_token_input(*, name: str, expiry_days: int) -> str:
    """The name as stored (stripped); `InvalidInput` naming the field when either is wrong."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("give the token a name, e.g. the script that will use it", field="name")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"at most {NAME_MAX} characters", field="name")
    if expiry_days not in EXPIRY_DAYS:
        choices = ", ".join(str(d) for d in EXPIRY_DAYS)
        raise InvalidInput(f"one of {choices} (0: never expires)", field="expiry_days")
    return name


def token_create(
    *, user: AbstractBaseUser, name: str, expiry_days: int, origin: Origin | None = None
) -> CreatedToken:
    """Make a token for `user`, valid for `expiry_days` (0: until revoked)."""
    name = check_token_input(name=name, expiry_days=expiry_days)
    expiry = timedelta(days=expiry_days) if expiry_days else None
    with transaction.atomic():
        token, key = ApiToken.objects.create(user=user, expiry=expiry, name=name)
        record("token.create", origin=origin, **about_token(token))
    return CreatedToken(token=token, key=key)


def tokens_of(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The user's tokens, newest first, expired ones included (the page marks them)."""
    return ApiToken.objects.filter(user=user).order_by("-created", "-id")


def token_revoke(
    *, user: AbstractBaseUser, token_id: int, origin: Origin | None = None
) -> ApiToken | None:
    """Delete one of the user's own tokens; it fails from the next request on.

    Returns the token as it was, or None if there was none (nothing is recorded then).
    """
    gone = tokens_delete(tokens=ApiToken.objects.filter(user=user, pk=token_id), origin=origin)
    return gone[0] if gone else None


def tokens_delete(*, tokens: QuerySet[ApiToken], origin: Origin | None = None) -> list[ApiToken]:
    """Delete `tokens` (the admin's bulk delete, one user's revoke), each recorded as it was;
    one a concurrent revoke got to first is neither deleted twice nor recorded."""
    gone = []
    with transaction.atomic():
        for token in tokens.select_related("user"):
            about = about_token(token)  # before the delete clears its id
            deleted, _ = ApiToken.objects.filter(pk=token.pk).delete()
            if deleted:
                record("token.revoke", origin=origin, **about)
                gone.append(token)
    return gone


def tokens_revoke_all(*, user: AbstractBaseUser) -> int:
    """Delete every token of `user` (a deactivated account: recorded as that, not per token)."""
    deleted, _ = ApiToken.objects.filter(user=user).delete()
    return deleted


def is_expired(token: ApiToken) -> bool:
    return token.expiry is not None and token.expiry <= timezone.now()
