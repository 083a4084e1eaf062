"""Celery tasks of preferences: the quality report's refresh."""

from __future__ import annotations

from celery import shared_task

from feedback_app.annotation.quality_refresh import REFRESH_QUALITY
from feedback_app.core.models import Project

from .reports import quality_refresh


@shared_task(name=REFRESH_QUALITY)
def refresh_quality(project_id: int) -> dict:
    """Recompute and store every quality figure of a project (gone projects are ignored)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": project_id, "missing": True}
    report = quality_refresh(project=project)
    return {"project": project_id, "rankings": report.rankings_count, "seconds": report.seconds}
