"""An AI judge ranks a round: the `judge_round` job (issue 23).

The judge is a member like a person: each task comes from the same hand-out
(`task_assign_next`, leases and overlap) and goes back through the same submit (the one
validator), with its pairwise verdicts stored beside the ranking (`annotation/judge_votes.py`).
K > 2 candidates are ranked from every pair asked in both orders (`training.judges`).

An endpoint's key is read from the environment variable the judge names, or opened from its
sealed form (common/sealed.py), here in the worker and nowhere else, and handed to the client
only: not to the job's params, outputs or log.
"""

from __future__ import annotations

import os
import time

from feedback_app.annotation.handout import task_assign_next
from feedback_app.annotation.judge_votes import judge_ranking_submit
from feedback_app.annotation.models import Prompt, Task
from feedback_app.common import sealed
from feedback_app.core.models import Job, Judge
from training.judges.base import Cost, PairwiseJudge
from training.judges.prompts import DEFAULT_TEMPLATE

from ..reporting import JobCancelled, JobReporter


def judge_build(judge: Judge) -> PairwiseJudge:
    """The `training.judges` judge a Judge row describes (loads its model)."""
    template = judge.template or DEFAULT_TEMPLATE
    if judge.kind == Judge.Kind.REWARD_MODEL:
        from training.judges.local import RewardModelJudge

        return RewardModelJudge(judge.model_version.weights, tie_threshold=judge.tie_threshold)
    if judge.kind == Judge.Kind.CAUSAL_LM:
        from training.judges.local import CausalLMJudge

        return CausalLMJudge(
            judge.weights, template=template, mode=judge.mode or "logprobs",
            tie_threshold=judge.tie_threshold,
        )  # fmt: skip
    from training.judges.openai_chat import OpenAIChatJudge

    if judge.api_key_sealed:
        key: str | None = sealed.unseal(judge.api_key_sealed)  # SealBroken names no secret
    else:
        key = os.environ.get(judge.api_key_env) if judge.api_key_env else None
    return OpenAIChatJudge(
        base_url=judge.base_url, model=judge.model_name, api_key=key, template=template
    )


def prompt_text(prompt: Prompt) -> str:
    """The prompt as one text for the judge's template (a chat: one "role: content" a line)."""
    if not prompt.is_chat:
        return prompt.text
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt.messages)


def run_judge_round(job: Job, reporter: JobReporter) -> dict:
    """Hand the judge tasks and submit its rankings until none is left or `limit` are done."""
    p = job.params
    judge = Judge.objects.select_related("user", "model_version").get(pk=p["judge"])
    limit = p.get("limit")
    reporter.stage(f"Loading judge {judge}", 0.0)
    ai = judge_build(judge)
    open_tasks = Task.objects.filter(project=job.project, gold__isnull=True).count()
    total = max(1, min(limit, open_tasks) if limit else open_tasks)
    started = time.perf_counter()
    ranked = comparisons = inconsistent = 0
    cost = Cost()
    while limit is None or ranked < limit:
        assignment = task_assign_next(project=job.project, annotator=judge.user)
        if assignment is None:
            break
        task = assignment.task
        texts = {c.pk: c.text for c in task.candidates.all()}
        order = list(assignment.display_order)
        ranking = ai.rank(prompt_text(task.prompt), [texts[c] for c in order])
        judge_ranking_submit(
            task_id=task.pk, project_id=job.project_id, annotator=judge.user, order=order,
            ranking=ranking, unsure_margin=judge.unsure_margin,
        )  # fmt: skip
        ranked += 1
        comparisons += len(ranking.comparisons)
        inconsistent += ranking.inconsistent
        cost += ranking.cost
        if reporter.progress(min(ranked, total), total, {"inconsistent": inconsistent}):
            raise JobCancelled()
    reporter.log(f"{judge} ranked {ranked} tasks ({comparisons} comparisons, both orders)")
    return {
        "judge": judge.pk,
        "ranked": ranked,
        "comparisons": comparisons,
        "position_inconsistent": inconsistent,
        "tokens": cost.tokens,
        "seconds": round(time.perf_counter() - started, 3),
        "judge_seconds": round(cost.seconds, 3),
    }
