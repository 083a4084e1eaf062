"""The review_scores job on a real worker: a tiny reward model scores the ranked candidates and
the pairs it reverses become the project's review queue (quality/review.py)."""

import pytest

from feedback_app.annotation import handout, submit
from feedback_app.annotation import services as annotation
from feedback_app.annotation.importing import check_records
from feedback_app.core.models import Membership, ModelVersion, Project
from feedback_app.finetuning import versions
from feedback_app.preferences.models import ReviewItem
from feedback_app.preferences.quality.judgements import task_votes
from feedback_app.preferences.review import review_judgements

from .test_loop import run


@pytest.mark.slow
def test_the_review_job_stores_the_pairs_the_reward_model_reverses(
    start_worker, tiny_policy, make_user
):
    start_worker()
    project = Project.objects.create(name="review", candidates_per_task=2, annotations_per_task=2)
    records = [{"prompt": f"Question {i}:", "candidates": [" yes", " no"]} for i in range(8)]
    annotation.prompts_import(project=project, records=check_records(enumerate(records, 1), k=2))
    # A reward model: the tiny LM with a fresh one-number head (scores are arbitrary but real).
    versions.model_register(project=project, kind="reward", name="rm", weights=tiny_policy)
    bots = [make_user(f"bot-{i}") for i in range(2)]
    for bot in bots:
        Membership.objects.create(project=project, user=bot)
        while (a := handout.task_assign_next(project=project, annotator=bot)) is not None:
            yes, no = sorted(a.task.candidates.all(), key=lambda c: c.position)
            # Even tasks: people prefer " yes"; odd ones: " no". No scorer agrees with both.
            order = [yes, no] if int(a.task.prompt.text.split()[1][:-1]) % 2 == 0 else [no, yes]
            submit.ranking_submit(task_id=a.task_id, annotator=bot, groups=[[c.pk] for c in order])

    job = run(project, "review_scores", {"margin": 0.0})

    assert job.outputs["scored"] == 16 and job.outputs["tasks"] == 8
    items = list(ReviewItem.objects.filter(project=project))
    assert job.outputs["queue"] == len(items) >= 1
    votes = task_votes(review_judgements(project=project))
    reward = ModelVersion.objects.get(project=project, kind="reward")
    for item in items:
        pair = votes[item.task_id].pairs[tuple(sorted((item.chosen_id, item.rejected_id)))]
        assert (item.votes_for, item.votes_against) == (2, 0) and pair.total == 2
        assert item.margin > 0 and item.model_version == reward
