"""Dataset snapshots (immutable, content-hashed files of pairs) and feedback from deployment."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from feedback_app.common.models import TimeStampedModel
from feedback_app.core.models import ModelVersion, Project


class DeploymentFeedback(TimeStampedModel):
    """What a deployed model's end users said: thumbs on one response, or one of two picked.

    Kept apart from annotators' rankings: a snapshot uses it only when its policy says
    `include_feedback` (see `snapshot_build`), and `source` names the deployment it came from.
    """

    class Kind(models.TextChoices):
        THUMBS = "thumbs", "Thumbs up / down on one response"
        CHOICE = "choice", "One of two responses picked"

    class Rating(models.TextChoices):
        UP = "up", "Up"
        DOWN = "down", "Down"

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="deployment_feedback"
    )
    kind = models.CharField(max_length=16, choices=Kind)
    source = models.CharField(max_length=200, help_text="The deployment that collected it.")
    prompt_text = models.TextField(blank=True)
    prompt_messages = models.JSONField(null=True, blank=True)
    prompt_hash = models.CharField(max_length=64, help_text="As Prompt.content_hash.")
    response = models.TextField(blank=True, help_text="thumbs: the response rated.")
    rating = models.CharField(max_length=8, choices=Rating, blank=True)
    chosen = models.TextField(blank=True, help_text="choice: the response picked.")
    rejected = models.TextField(blank=True, help_text="choice: the other one.")
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deployment_feedback",
    )
    end_user = models.CharField(max_length=200, blank=True, help_text="An opaque id, if any.")
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "prompt_hash"])]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="thumbs", rating__in=["up", "down"])
                    | models.Q(kind="choice", rating="")
                ),
                name="feedback_rating_matches_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} feedback from {self.source}"
