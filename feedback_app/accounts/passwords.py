"""What follows a password change or reset: the user's other sessions end and, if they choose,
their API tokens are revoked; one audit event (`account.password`) says what ended.

The account page offers the token choice (a checkbox); the Django admin's change-password form
(a reset by an admin) ends the sessions and keeps the tokens. An invitation's set-password link
is for a new account, which has no session or token yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser

from feedback_app.common.auth import sessions_end
from feedback_app.core.audit import Origin, record

from .tokens import tokens_revoke_all


@dataclass(frozen=True)
class PasswordChanged:
    sessions_ended: int
    tokens_revoked: int


def password_changed(
    *,
    user: AbstractBaseUser,
    origin: Origin | None,
    keep_session: str | None = None,
    revoke_tokens: bool,
    how: str,
) -> PasswordChanged:
    """After `user`'s password was set: end their sessions but `keep_session` (the one that
    changed it, if it is theirs), revoke their API tokens if asked, and record it (`origin`:
    who set the password and from where; None records nothing)."""
    ended = sessions_end(user_id=user.pk, keep=keep_session)
    revoked = tokens_revoke_all(user=user) if revoke_tokens else 0
    record(
        "account.password",
        origin=origin,
        target=user.get_username(),
        data={"user_id": user.pk, "how": how, "sessions_ended": ended, "tokens_revoked": revoked},
    )
    return PasswordChanged(ended, revoked)
