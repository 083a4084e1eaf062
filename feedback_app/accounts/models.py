"""API tokens as django-rest-knox stores them (a SHA-512 digest, never the key), with a name."""

from __future__ import annotations

from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS


class ApiToken(AbstractAuthToken):
    """One API token of a user; the key itself is shown once, at creation, and never stored.

    knox's digest is its primary key; an id of our own is what pages and the API name a token
    by, so the digest never leaves the database.
    """

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"
