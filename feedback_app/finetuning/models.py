"""Rounds of the loop (model versions and jobs are core rows: feedback_app/core/models.py)."""

from __future__ import annotations

from django.db import models

from feedback_app.common.models import TimeStampedModel
from feedback_app.core.models import Job, ModelVersion, Project


class Round(TimeStampedModel):
    """A round of candidates: which policy versions generated it (two for a head-to-head)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    model_versions = models.ManyToManyField(ModelVersion, related_name="rounds", blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # How the round's prompts were chosen and from what (training/selection.py): the rule, the
    # reward model, the pool, the chosen prompt ids and a summary of the scores.
    selection = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_number_unique")
        ]

    def __str__(self) -> str:
        return f"round {self.number}"
