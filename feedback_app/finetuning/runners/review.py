"""Score the review queue: the pairs the reward model confidently reverses."""

from __future__ import annotations

from feedback_app.core.artifacts import local_model
from feedback_app.core.models import Job, ModelVersion
from feedback_app.preferences.quality.judgements import task_votes
from feedback_app.preferences.quality.review import disagreements_from_votes
from feedback_app.preferences.review import (
    candidates_to_score,
    review_judgements,
    review_queue_store,
)

from ..reporting import JobCancelled, JobReporter
from .common import prompt_input

# Candidates scored per call of the reward model (and per progress report).
REVIEW_SCORE_CHUNK = 256


def run_review_scores(job: Job, reporter: JobReporter) -> dict:
    """Score the candidates of every pair with a human majority by the reward model, and store
    the pairs it confidently reverses as the project's review queue (quality/review.py)."""
    from training.guards import reward_scorer

    p = job.params
    reward = ModelVersion.objects.get(pk=p["reward"])
    votes = task_votes(review_judgements(project=job.project))
    decided = [
        t for t, tv in votes.items() if any(v.a_better != v.b_better for v in tv.pairs.values())
    ]
    candidates = candidates_to_score(project=job.project, task_ids=decided)
    reporter.stage(f"Scoring {len(candidates)} candidates of {len(decided)} tasks", 0.0)
    scores: dict[int, float] = {}
    if candidates:
        scorer = reward_scorer(local_model(reward.weights))  # a model, or an ensemble's minimum
        report = reporter.progress
        for start in range(0, len(candidates), REVIEW_SCORE_CHUNK):
            chunk = candidates[start : start + REVIEW_SCORE_CHUNK]
            values = scorer.score_completions(
                [prompt_input(c.task.prompt) for c in chunk], [c.text for c in chunk]
            )
            scores.update(zip((c.pk for c in chunk), values, strict=True))
            if report(start + len(chunk), len(candidates), {}):
                raise JobCancelled()
    items = disagreements_from_votes(votes, scores, margin=p["margin"])
    stored = review_queue_store(project=job.project, model_version=reward, items=items)
    reporter.log(f"{stored} confident disagreements of {len(decided)} tasks")
    return {"reward": reward.pk, "scored": len(scores), "tasks": len(decided), "queue": stored}
