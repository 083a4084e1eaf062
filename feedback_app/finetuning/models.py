"""Model versions, jobs and rounds: the registry the loop writes to."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from feedback_app.common.models import TimeStampedModel


class ModelVersion(TimeStampedModel):
    """A policy or a reward model; `weights` is a local path or a Hugging Face hub id."""

    class Kind(models.TextChoices):
        POLICY = "policy", "Policy"
        REWARD = "reward", "Reward model"

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="model_versions"
    )
    kind = models.CharField(max_length=16, choices=Kind)
    name = models.CharField(max_length=200)
    weights = models.CharField(max_length=500)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    job = models.ForeignKey(
        "finetuning.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    snapshot = models.ForeignKey(
        "preferences.DatasetSnapshot",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_versions",
    )
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind"],
                condition=Q(is_active=True),
                name="one_active_version_per_kind",
            ),
            models.UniqueConstraint(fields=["project", "name"], name="version_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def won_against_parent(self) -> bool | None:
        """From the last evaluation: did it beat its parent (win rate above one half)?"""
        rate = self.metrics.get("win_rate")
        return None if rate is None else rate > 0.5


class Job(TimeStampedModel):
    """One unit of background work. This row, not Celery's result backend, is the truth."""

    class Kind(models.TextChoices):
        GENERATE = "generate", "Generate a round"
        BUILD_DATASET = "build_dataset", "Build a dataset snapshot"
        TRAIN_REWARD = "train_reward", "Train a reward model"
        TRAIN_DPO = "train_dpo", "Train with DPO"
        EVALUATE = "evaluate", "Evaluate a policy"
        PROMOTE = "promote", "Promote a model version"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=Kind)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    progress_note = models.CharField(max_length=200, blank=True)
    metric_history = models.JSONField(default=list, blank=True)
    log_tail = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    # Where its message went and when it was last sent (the sweep re-sends a message no worker
    # took), and which queues the worker that claimed it consumes (",default,training,"): the
    # heartbeats of a worker's jobs show for which queues a worker was alive when.
    queue = models.CharField(max_length=100, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    send_count = models.PositiveSmallIntegerField(default=0)
    worker_queues = models.CharField(max_length=500, blank=True)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status not in self.ACTIVE

    @property
    def retryable(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.CANCELLED)


class Round(TimeStampedModel):
    """A round of candidates: which policy versions generated it (two for a head-to-head)."""

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="rounds"
    )
    number = models.PositiveIntegerField()
    model_versions = models.ManyToManyField(ModelVersion, related_name="rounds", blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_number_unique")
        ]

    def __str__(self) -> str:
        return f"round {self.number}"
