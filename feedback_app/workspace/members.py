"""Members of a project, invitations, and deactivating an account.

- A project's admins (and staff) add existing users by username or e-mail, change their role and
  remove them. Removing someone keeps everything they did (rankings, demonstrations).
- A new person is invited by e-mail: an account without a usable password is made, added with
  its role, and sent a one-time link to set their own password (Django's password-reset token:
  it is bound to the password hash and last login, so it stops working once used, and expires
  after PASSWORD_RESET_TIMEOUT). No admin ever types someone else's password.
- An admin revokes a pending invitation (the account has not set a password yet): the invitee
  leaves the project. If no project is left to them, the account is deactivated and its password
  hash re-drawn, so the mailed link stops working (its token is bound to that hash) and answers
  "revoked" (410); inviting the address again revives the same account. An invitee still invited
  to another project keeps a working link, for that project only.
- Deactivating an account signs it out everywhere (sessions and API tokens stop working) and
  keeps its rankings. Who may: staff, for anyone but themselves; a project admin, for a user who
  is neither staff nor an admin anywhere and whose every project that admin administers (so no
  admin can lock someone out of a project they have no say in).
Every change goes to the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from feedback_app.accounts.tokens import tokens_revoke_all
from feedback_app.common import storable
from feedback_app.common.errors import Conflict, InvalidInput, NotAllowed, Problem
from feedback_app.core import access
from feedback_app.core.access import check_writable
from feedback_app.core.audit import Origin, record
from feedback_app.core.models import Membership, Project

# Makes a path absolute with the host the admin used (a page's `request.build_absolute_uri`).
Absolute = Callable[[str], str]

ROLES = tuple(Membership.Role.values)
MAX_EMAIL = 254


def members_of(project: Project) -> QuerySet[Membership]:
    """The people of a project; its AI judges are listed apart (`judges.judges_of`)."""
    return (
        Membership.objects.filter(project=project, user__judge__isnull=True)
        .select_related("user")
        .order_by("role", "user__username")
    )


def check_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidInput(Problem("role", f"one of {', '.join(ROLES)}"))
    return role  # type: ignore[return-value]


def user_find(identifier: object) -> AbstractBaseUser:
    """The active user with this username, or else this e-mail address (exactly one)."""
    text = storable.check_text(identifier, "user", limit=MAX_EMAIL).strip()
    users = get_user_model().objects.filter(is_active=True)
    user = users.filter(username=text).first()
    if user is None and "@" in text:
        matches = list(users.filter(email__iexact=text)[:2])
        if len(matches) > 1:
            raise InvalidInput(Problem("user", "several accounts have this e-mail: use a username"))
        user = matches[0] if matches else None
    if user is None:
        raise InvalidInput(
            Problem("user", "no active account with this username or e-mail; invite them instead")
        )
    return user


def member_add(
    *,
    project: Project,
    user: AbstractBaseUser,
    role: str,
    origin: Origin | None = None,
) -> Membership:
    access.check_administers(origin, project)
    check_writable(project)
    check_role(role)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(project=project, user=user, role=role)
            record(
                "member.add",
                origin=origin,
                project=project,
                target=user.get_username(),
                data={"user_id": user.pk, "role": role},
            )
    except IntegrityError as exc:
        raise Conflict(Problem("user", f"{user.get_username()} is already a member")) from exc
    return membership


def member_role_set(
    *,
    membership: Membership,
    role: str,
    origin: Origin | None = None,
) -> Membership:
    access.check_administers(origin, membership.project)
    check_writable(membership.project)
    check_role(role)
    if membership.role != role:
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
        record(
            "member.role",
            origin=origin,
            project=membership.project,
            target=membership.user.get_username(),
            data={"user_id": membership.user_id, "from": before, "to": role},
        )
    return membership


def member_remove(
    *,
    membership: Membership,
    origin: Origin | None = None,
) -> None:
    """Take someone out of a project; their rankings stay (they belong to the project)."""
    access.check_administers(origin, membership.project)
    check_writable(membership.project)
    with transaction.atomic():
        membership.delete()
        record(
            "member.remove",
            origin=origin,
            project=membership.project,
            target=membership.user.get_username(),
            data={"user_id": membership.user_id, "role": membership.role},
        )


def _free_username(email: str) -> str:
    model = get_user_model()
    base = re.sub(r"[^\w.@+-]", "", email.split("@")[0])[:140] or "user"
    name, n = base, 1
    while model.objects.filter(username=name).exists():
        n += 1
        name = f"{base}{n}"
    return name


def invitation_link(user: AbstractBaseUser, *, absolute: Absolute | None = None) -> str:
    """The one-time set-password link for `user`; `absolute` (a page's
    `request.build_absolute_uri`) makes it absolute with the host the admin used."""
    path = reverse(
        "workspace:invitation",
        args=[
            urlsafe_base64_encode(force_bytes(user.pk)),
            default_token_generator.make_token(user),
        ],
    )
    return absolute(path) if absolute is not None else path


def invitation_send(
    *,
    project: Project,
    email: object,
    role: str,
    origin: Origin | None = None,
    absolute: Absolute | None = None,
) -> Membership:
    """Make an account for `email` without a usable password, add it to the project and mail it
    a one-time link to set its password. An address that already has an account is added by
    username instead (its owner has a password already)."""
    access.check_administers(origin, project)
    check_writable(project)
    check_role(role)
    address = storable.check_text(email, "email", limit=MAX_EMAIL).strip()
    try:
        validate_email(address)
    except ValidationError as exc:
        raise InvalidInput(Problem("email", "not an e-mail address")) from exc
    model = get_user_model()
    existing = model.objects.filter(email__iexact=address).first()
    if existing is not None and existing.has_usable_password():
        raise Conflict(
            Problem("email", f"{address} has an account already: add {existing.get_username()}")
        )
    with transaction.atomic():
        user = existing
        if user is None:
            user = model(username=_free_username(address), email=address)
            user.set_unusable_password()
            user.save()
        elif _revoked(user):
            # Revoked before: no password, no project, nothing to protect; a new account for
            # the address would be the same thing under another name.
            user.is_active = True
            user.save(update_fields=["is_active"])
        membership, created = Membership.objects.get_or_create(
            project=project, user=user, defaults={"role": role}
        )
        if not created and membership.role != role:
            membership.role = role
            membership.save(update_fields=["role", "updated_at"])
        record(
            "invitation.send",
            origin=origin,
            project=project,
            target=user.get_username(),
            data={"user_id": user.pk, "email": address, "role": role},
        )
        link = invitation_link(user, absolute=absolute)
        inviter = origin.user if origin is not None else None
        by = f" by {inviter.get_username()}" if inviter is not None else ""
        transaction.on_commit(
            lambda: send_mail(
                subject=f"You are invited to {project.name}",
                message=(
                    f"You were invited{by} to annotate in {project.name} as {role}.\n\n"
                    f"Your username is {user.get_username()}. Set your password here (the "
                    f"link works once):\n\n{link}\n"
                ),
                from_email=None,
                recipient_list=[address],
            )
        )
    return membership


def _revoked(user: AbstractBaseUser) -> bool:
    """A revoked invitee: never set a password, deactivated, and in no project."""
    return (
        not user.is_active
        and not user.has_usable_password()
        and not Membership.objects.filter(user=user).exists()
    )


def invitation_is_revoked(user: AbstractBaseUser | None) -> bool:
    """Whether the link of `user`'s invitation answers "revoked": the account never set a
    password and was deactivated (by a revocation, or by hand before the link was used)."""
    return user is not None and not user.is_active and not user.has_usable_password()


def invitation_revoke(*, membership: Membership, origin: Origin | None = None) -> None:
    """Withdraw a pending invitation to `membership.project` (see the module's docstring).
    An invitee who has set a password is a member like any other: remove them instead."""
    project = membership.project
    access.check_administers(origin, project)
    check_writable(project)
    user = membership.user
    if user.has_usable_password():
        raise Conflict(
            Problem("user", f"{user.get_username()} accepted the invitation: remove them instead")
        )
    with transaction.atomic():
        membership.delete()
        left = Membership.objects.filter(user=user).exists()
        if not left:
            user.is_active = False
            user.set_unusable_password()  # a new random hash: the mailed token no longer fits
            user.save(update_fields=["is_active", "password"])
            tokens_revoke_all(user=user)
        record(
            "invitation.revoke",
            origin=origin,
            project=project,
            target=user.get_username(),
            data={
                "user_id": user.pk,
                "email": user.email,
                "role": membership.role,
                "link_stopped": not left,
            },
        )


def invitation_accepted(*, user: AbstractBaseUser, origin: Origin | None = None) -> None:
    """Record that an invited person set their password (the token is spent with it)."""
    record(
        "invitation.accept",
        origin=origin and Origin(user=user, interface=origin.interface, address=origin.address),
        target=user.get_username(),
        data={"user_id": user.pk},
    )


def can_deactivate(actor: AbstractBaseUser, user: AbstractBaseUser) -> bool:
    """Staff: anyone but themselves. A project admin: a plain member (not staff, admin nowhere)
    all of whose projects they administer."""
    if not actor.is_authenticated or actor.pk == user.pk:
        return False
    if actor.is_staff:
        return True
    if user.is_staff or Membership.objects.filter(user=user, role=Membership.Role.ADMIN).exists():
        return False
    theirs = set(Membership.objects.filter(user=user).values_list("project_id", flat=True))
    mine = set(access.projects_administered_by(actor).values_list("pk", flat=True))
    return bool(theirs) and theirs <= mine


def account_deactivate(
    *,
    user: AbstractBaseUser,
    origin: Origin,
    active: bool = False,
) -> AbstractBaseUser:
    """Deactivate (or reactivate) an account: it can no longer sign in, its API tokens are
    deleted, its rankings and memberships stay. `save()`, not `update()`: the cached user is
    dropped with it (docs/architecture.md), so the next request of that user is refused."""
    if origin.user is None or not can_deactivate(origin.user, user):
        raise NotAllowed("only staff, or an admin of every project of this user, may do this")
    if user.is_active != active:
        with transaction.atomic():
            user.is_active = active
            user.save(update_fields=["is_active"])
            if not active:
                tokens_revoke_all(user=user)
            record(
                "account.activate" if active else "account.deactivate",
                origin=origin,
                target=user.get_username(),
                data={"user_id": user.pk},
            )
    return user
