"""Reads for the loop pages and the API."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Max, Q

from feedback_app.annotation.models import Ranking, Task
from feedback_app.core.eta import job_eta_text
from feedback_app.core.models import DatasetSnapshot, Job, ModelVersion, Project
from feedback_app.preferences.pairs import pairwise_agreement
from feedback_app.preferences.selectors import ranking_rows
from feedback_app.preferences.services import rankings_since_last_snapshot

from . import guide, jobs


@dataclass(frozen=True)
class LoopOverview:
    round: int
    round_tasks: int
    round_tasks_complete: int
    active_policy: ModelVersion | None
    active_reward: ModelVersion | None
    rankings_since_snapshot: int
    agreement: float | None
    running_jobs: int


def loop_overview(*, project: Project) -> LoopOverview:
    """The loop at a glance: current round and its progress, active models, new rankings."""
    current = Task.objects.filter(project=project).aggregate(n=Max("round"))["n"] or 0
    tasks = Task.objects.filter(project=project, round=current).aggregate(
        total=Count("pk"),
        complete=Count("pk", filter=Q(submitted_count__gte=F("target_annotations"))),
    )
    active = {v.kind: v for v in ModelVersion.objects.filter(project=project, is_active=True)}
    return LoopOverview(
        round=current,
        round_tasks=tasks["total"],
        round_tasks_complete=tasks["complete"],
        active_policy=active.get(ModelVersion.Kind.POLICY),
        active_reward=active.get(ModelVersion.Kind.REWARD),
        rankings_since_snapshot=rankings_since_last_snapshot(project=project),
        agreement=project_agreement(project=project),
        running_jobs=Job.objects.filter(project=project, status__in=Job.ACTIVE).count(),
    )


def jobs_watched(*, kinds: Collection[str], seen: Collection[int] = ()) -> list[Job]:
    """The queued or running jobs of `kinds`, and the jobs in `seen` however they ended, oldest
    first (`manage.py watch_jobs`). The metric history, which may be long, is not read."""
    return list(
        Job.objects.filter(Q(kind__in=kinds, status__in=Job.ACTIVE) | Q(pk__in=seen))
        .defer("metric_history", "log_tail", "traceback", "params")
        .order_by("id")
    )


def worker_absent(*, project: Project) -> jobs.UnclaimedJob | None:
    """The project's queued job that has waited longest with no sign of a worker for its queue.

    None unless that wait passed JOB_UNCLAIMED_WARN_SECONDS: the loop page then says a worker
    is absent or wedged. Read from the job rows only (the heartbeats of each queue's workers),
    never by asking workers, so a page view costs two small queries.
    """
    waits = jobs.jobs_unclaimed(queryset=Job.objects.filter(project=project))
    if waits and waits[0].waited.total_seconds() >= settings.JOB_UNCLAIMED_WARN_SECONDS:
        return waits[0]
    return None


def project_agreement(*, project: Project) -> float | None:
    """Pairwise annotator agreement, recomputed only when a ranking was added.

    It reads every ranking of the project (pure Python over all of them), too much for each view
    of the loop page; the newest ranking id in the key makes any new ranking refresh it.
    """
    newest = Ranking.objects.filter(task__project=project).aggregate(n=Max("id"))["n"]
    key = f"loop:agreement:{project.pk}:{project.created_at.timestamp()}:{newest}"
    return cache.get_or_set(
        key, lambda: pairwise_agreement(r.row for r in ranking_rows(project=project)), 3600
    )


def model_versions(*, project: Project):
    return (
        ModelVersion.objects.filter(project=project)
        .select_related("parent", "snapshot", "job")
        .order_by("-id")
    )


def recent_jobs(*, project: Project, limit: int = 20):
    return Job.objects.filter(project=project).order_by("-id")[:limit]


def last_review_scoring(*, project: Project) -> Job | None:
    """The project's latest "Score the review queue" job: when the queue was last scored (or
    is being scored now) and what it found, for the review page."""
    return (
        Job.objects.filter(project=project, kind=Job.Kind.REVIEW_SCORES)
        .defer("metric_history", "log_tail", "traceback")
        .order_by("-id")
        .first()
    )


def job_status(job: Job) -> dict:
    """What the job page polls: small, JSON-ready."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "progress_note": job.progress_note,
        "metric_history": job.metric_history,
        "log_tail": job.log_tail,
        "error": job.error,
        "outputs": job.outputs,
        "cancel_requested": job.cancel_requested,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "eta": job_eta_text(job),
        "finished": job.is_finished,
    }


def loop_state(*, project: Project, overview: LoopOverview) -> guide.LoopState:
    """The project's state as the guided loop reads it (`guide.next_step`): a few small
    queries on top of the overview the loop page reads anyway."""
    snapshot = (
        DatasetSnapshot.objects.filter(project=project, kind=DatasetSnapshot.Kind.PAIRS)
        .order_by("-id")
        .values_list("pk", flat=True)
        .first()
    )
    trained = ModelVersion.objects.filter(project=project, snapshot_id__gte=snapshot or 0)
    reward_trained = snapshot is not None and trained.filter(kind=ModelVersion.Kind.REWARD).exists()
    policy = (
        trained.filter(kind=ModelVersion.Kind.POLICY, parent__isnull=False).order_by("-id").first()
        if snapshot is not None
        else None
    )
    metrics = policy.metrics if policy is not None else {}
    return guide.LoopState(
        has_tasks=overview.round_tasks > 0,
        round_open=overview.round_tasks_complete < overview.round_tasks,
        rankings_since_snapshot=overview.rankings_since_snapshot,
        snapshot=snapshot,
        reward_trained=reward_trained,
        policy=policy.pk if policy is not None else None,
        policy_verdict=guide.verdict(
            metrics.get("win_rate"), metrics.get("win_rate_low"), metrics.get("win_rate_high")
        ),
        policy_active=policy is not None and policy.is_active,
    )


def eval_comparisons(*, project: Project, prompt_limit: int = 16) -> int:
    """How many comparisons an evaluation makes: one sample a prompt, on up to `prompt_limit`
    of the project's prompts (the autopilot's evaluate step's default)."""
    from feedback_app.annotation.models import Prompt

    return min(Prompt.objects.filter(project=project).count(), prompt_limit)


def running_jobs_count(*, user) -> int:
    """Queued or running jobs of the projects `user` administers (the top bar's indicator)."""
    from feedback_app.core.access import projects_administered_by

    return Job.objects.filter(
        project__in=projects_administered_by(user), status__in=Job.ACTIVE
    ).count()


def running_jobs(*, user, limit: int = 100) -> list[Job]:
    """The queued and running jobs behind the top bar's count, newest first."""
    from feedback_app.core.access import projects_administered_by

    return list(
        Job.objects.filter(project__in=projects_administered_by(user), status__in=Job.ACTIVE)
        .select_related("project")
        .defer("metric_history", "log_tail", "traceback")
        .order_by("-id")[:limit]
    )
