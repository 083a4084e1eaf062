"""Django's model backend, with the signed-in user read from the shared cache; users made by
commands as Django makes them.

Every page loads the user behind the session: one ORM query, a quarter of the CPU of a
ranking submit (docs/bench-annotate.md). With Redis (shared by every process) the user row is
kept there for `USER_CACHE_SECONDS`, and dropped whenever the row is saved or deleted, so a
password change, a deactivation or a new role made through the admin or any ``save()`` counts at
the next request. A bulk ``queryset.update()`` of users skips those signals: it takes effect
within `USER_CACHE_SECONDS`. Without Redis each process would keep its own copy, which a save
in another process could not drop, so nothing is cached then.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

USER_CACHE_SECONDS = 60


def _key(user_id: Any) -> str:
    return f"auth:user:{user_id}"


class CachedModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        if not settings.CACHE_SIGNED_IN_USERS:
            return super().get_user(user_id)
        user = cache.get(_key(user_id))
        if user is None:
            user = super().get_user(user_id)  # None too when the user may not sign in
            if user is not None:
                cache.set(_key(user_id), user, USER_CACHE_SECONDS)
        return user if user is not None and self.user_can_authenticate(user) else None


def user_get_or_create(
    *, username: str, password: str | None = None, **extra: Any
) -> tuple[AbstractBaseUser, bool]:
    """The user of that name as the login form finds it; made by ``create_user`` if missing.

    The login form NFKC-normalises the name typed (``UsernameField``) and the backend looks that
    up as stored, so a name stored un-normalised ("ａｎｎｏ" in full-width letters) could sign in
    with a token but never with the form. ``create_user`` stores the normalised name ("anno"),
    and the lookup here uses it too, so a second run finds the user whichever way it is spelt.
    Without a password the user gets an unusable one (``create_user``'s rule).
    """
    model = get_user_model()
    name = model.normalize_username(username)
    try:
        return model._default_manager.get_by_natural_key(name), False
    except model.DoesNotExist:
        return model._default_manager.create_user(name, password=password, **extra), True


def forget_user(sender: type, instance: AbstractBaseUser, **kwargs: Any) -> None:
    cache.delete(_key(instance.pk))


def connect_signals() -> None:
    user_model = get_user_model()
    post_save.connect(forget_user, sender=user_model, dispatch_uid="forget-cached-user-save")
    post_delete.connect(forget_user, sender=user_model, dispatch_uid="forget-cached-user-delete")


def sessions_end(*, user_id: Any, keep: str | None = None) -> int:
    """End every session signed in as `user_id` except the one keyed `keep`; how many ended.

    A password change already makes other sessions fail Django's session-hash check at their
    next request; deleting them makes that explicit and countable (the audit event says how
    many), and frees the rows. Database-backed engines only (db, cached_db: their rows are the
    sessions); with a cookie or pure cache engine the hash check is what ends them, and 0 is
    returned. Reads every unexpired session once: a password change is rare.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store, "get_model_class"):
        return 0
    live = store.get_model_class().objects.filter(expire_date__gt=timezone.now())
    keys = [
        s.session_key
        for s in live.only("session_key", "session_data").iterator()
        if s.session_key != keep and s.get_decoded().get(SESSION_KEY) == str(user_id)
    ]
    for key in keys:
        store(session_key=key).delete()  # through the engine: its cache copy goes too
    return len(keys)
