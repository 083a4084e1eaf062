"""Dataset snapshots (immutable, content-hashed files of pairs) and feedback from deployment."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from feedback_app.common.models import TimeStampedModel


class DatasetSnapshot(TimeStampedModel):
    """Pairs in TRL's format, split by prompt, written once; the row describes the files.

    `rankings_through` is the highest Ranking id the snapshot saw, so "rankings since the last
    snapshot" is a cheap count.
    """

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="snapshots"
    )
    content_hash = models.CharField(max_length=64)
    policy = models.JSONField(help_text="The PairPolicy that chose the pairs.")
    test_fraction = models.FloatField()
    seed = models.IntegerField()
    path = models.CharField(max_length=500, help_text="Folder holding train.jsonl and test.jsonl.")
    format = models.CharField(max_length=20, help_text="standard or conversational")
    counts = models.JSONField(default=dict)
    rankings_through = models.BigIntegerField(default=0)
    job = models.ForeignKey(
        "finetuning.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "content_hash"], name="snapshot_unique_content"
            )
        ]

    def __str__(self) -> str:
        return f"snapshot {self.content_hash[:10]} ({self.counts.get('train', 0)} train pairs)"


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
        "annotation.Project", on_delete=models.CASCADE, related_name="deployment_feedback"
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
        "finetuning.ModelVersion",
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
