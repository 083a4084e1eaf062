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


class RankingDrop(TimeStampedModel):
    """A ranking an admin dropped from future datasets: who, when (created_at) and why.

    The ranking itself is kept (never deleted); preferences/rows.py leaves dropped ones out of
    every snapshot and export from then on. Snapshots built before keep what they hold.
    """

    ranking = models.OneToOneField(
        "annotation.Ranking", on_delete=models.CASCADE, related_name="dropped"
    )
    dropped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"ranking {self.ranking_id} dropped"


class MoreVotesRequest(TimeStampedModel):
    """An admin asked for one more ranking of a task: who, when, why, and the target it raised."""

    task = models.ForeignKey(
        "annotation.Task", on_delete=models.CASCADE, related_name="more_votes_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    target_before = models.PositiveSmallIntegerField()
    target_after = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["id"]


class ReviewItem(TimeStampedModel):
    """One pair of the review queue: the active reward model confidently disagrees with the
    human majority (quality/review.py). The `review_scores` job replaces a project's items."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_items")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="review_items"
    )
    task = models.ForeignKey("annotation.Task", on_delete=models.CASCADE, related_name="+")
    chosen = models.ForeignKey("annotation.Candidate", on_delete=models.CASCADE, related_name="+")
    rejected = models.ForeignKey("annotation.Candidate", on_delete=models.CASCADE, related_name="+")
    votes_for = models.PositiveIntegerField(help_text="Human votes for `chosen`.")
    votes_against = models.PositiveIntegerField()
    ties = models.PositiveIntegerField()
    margin = models.FloatField(help_text="reward(rejected) - reward(chosen).")

    class Meta:
        ordering = ["-margin", "id"]


class QualityReport(TimeStampedModel):
    """The quality figures of one project, computed by a worker (`preferences.reports`).

    Pages and the API read this row and nothing else, so a dashboard costs one query however
    many rankings the project has. `figures` holds one JSON value per figure (the shapes are in
    docs/quality.md, "Stored report"); `version` is the shape's version, so a page can tell a
    report written by older code. `rankings_through` (highest ranking id read) makes "is it
    stale?" a look at the rankings since, on their primary key.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="quality_report")
    version = models.PositiveSmallIntegerField()
    computed_at = models.DateTimeField()
    seconds = models.FloatField(help_text="How long the refresh took.")
    rankings_count = models.PositiveIntegerField()
    rankings_through = models.BigIntegerField(default=0)
    figures = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"quality of {self.project} at {self.computed_at:%Y-%m-%d %H:%M}"
