"""Abstract bases shared by every app."""

from django.db import models


class TimeStampedModel(models.Model):
    """created_at / updated_at, set by the database layer, never by hand."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
