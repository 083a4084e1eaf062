"""The unpaired kinds' reads: SFT and KTO rows from rankings, thumbs and demonstrations.

`stage_rows.py` holds their rules (pure: unanimous top, all-bad tasks, thumbs to KTO);
this module joins them to the database, a chunk of tasks at a time, through the pair
pipeline's ranking read (`rows.ranking_query`), so both kinds count the same rankings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from itertools import groupby

from feedback_app.annotation.models import Candidate, Task
from feedback_app.core.models import Project
from feedback_app.workspace.judges import judge_users

from .dataset import PromptView
from .judge_figures import vote_weights
from .models import DeploymentFeedback
from .pairs import PEOPLE, PairPolicy, RankingRow, pair_source, select_rankings
from .rows import (
    RANKINGS_PER_FETCH,
    TASKS_PER_CHUNK,
    RowQuery,
    demonstration_rows,
    parsed_rankings,
    ranking_query,
)
from .stage_rows import (
    KTO,
    SFT,
    StagePolicy,
    StageRow,
    all_bad_task,
    is_chat,
    kto_from_thumbs,
    unanimous_top,
)


def _ranked_tasks(project: Project) -> Iterator[tuple[int, list[RankingRow]]]:
    """(task id, its rankings) in task order, every ranking (all-bad ones too)."""
    rows = parsed_rankings(
        ranking_query(project, RowQuery()).iterator(chunk_size=RANKINGS_PER_FETCH)
    )
    for task_id, group in groupby(rows, key=lambda r: r[1]):
        yield task_id, [RankingRow(*rest) for _rid, *rest in group]


def _ranking_rows(
    project: Project, policy: PairPolicy, judges: set[int], *, all_bad: bool
) -> list[tuple[int, int, bool, str]]:
    """(task, candidate, desirable, voters): unanimous top candidates, and (`all_bad`) every
    candidate of a task flagged all-bad by most of its rankings. Only the rankings the policy's
    `votes` count (an AI judge's only when the policy takes it and it is trusted); `voters` is
    whose they were ("" in a project without judges)."""
    weights = vote_weights(project=project, policy=policy, weights=None, judges=judges)
    out = []
    for task_id, every in _ranked_tasks(project):
        rankings = [r for r in every if not weights or weights.get(r.annotator_id, 1) > 0]
        if not rankings:
            continue
        top = unanimous_top(rankings, policy)
        if top:
            kept = select_rankings(rankings, policy)
            voters = pair_source((r.annotator_id for r in kept), judges) if judges else ""
            out.extend((task_id, c, True, voters) for c in top)
        if all_bad and all_bad_task(rankings):
            voters = pair_source((r.annotator_id for r in rankings), judges) if judges else ""
            out.extend((task_id, c, False, voters) for g in rankings[0].groups for c in sorted(g))
    return out


def _candidate_rows(chosen: list[tuple[int, int, bool, str]], source: str) -> list[StageRow]:
    out = []
    for lo in range(0, len(chosen), TASKS_PER_CHUNK):
        chunk = chosen[lo : lo + TASKS_PER_CHUNK]
        texts = dict(
            Candidate.objects.filter(pk__in=[c for _, c, _, _ in chunk]).values_list("pk", "text")
        )
        prompts = {
            pk: PromptView(content_hash=h, text=text, messages=messages)
            for pk, text, messages, h in Task.objects.filter(
                pk__in={t for t, _, _, _ in chunk}
            ).values_list("pk", "prompt__text", "prompt__messages", "prompt__content_hash")
        }
        out.extend(
            StageRow(prompts[t], texts[c], label, source, voters) for t, c, label, voters in chunk
        )
    return out


def _thumbs_rows(project: Project) -> list[StageRow]:
    prompts: dict[str, PromptView] = {}
    thumbs = []
    for h, text, messages, response, rating in (
        DeploymentFeedback.objects.filter(project=project, kind=DeploymentFeedback.Kind.THUMBS)
        .order_by("id")
        .values_list("prompt_hash", "prompt_text", "prompt_messages", "response", "rating")
        .iterator(chunk_size=2000)
    ):
        prompts.setdefault(h, PromptView(content_hash=h, text=text, messages=messages))
        thumbs.append((h, response, rating == DeploymentFeedback.Rating.UP))
    return [StageRow(prompts[h], r, up, "feedback") for h, r, up in kto_from_thumbs(thumbs)]


def stage_dataset_rows(
    project: Project,
    kind: str,
    policy: PairPolicy,
    stage: StagePolicy,
    extra_sources: dict[str, list[StageRow]] | None = None,
) -> tuple[list[StageRow], bool, dict[str, int]]:
    """Every SFT or KTO row of the project under the policies, the chat rule, and rows per
    source (the snapshot records them). `extra_sources` are rows made elsewhere (written
    demonstrations), added first under their source name."""
    rows: list[StageRow] = []
    sources: dict[str, int] = {}
    judges = judge_users(project.pk)
    for name, extra in (extra_sources or {}).items():
        rows += extra
        sources[name] = len(extra)
    if kind == SFT and stage.sft_from_demonstrations:
        demos = demonstration_rows(project)
        rows += demos
        sources["demonstrations"] = len(demos)
    if kind == SFT and stage.sft_from_rankings:
        ranked = _candidate_rows(_ranking_rows(project, policy, judges, all_bad=False), "rankings")
        rows += ranked
        sources["rankings"] = len(ranked)
    if kind == KTO:
        if stage.kto_from_feedback:
            thumbs = _thumbs_rows(project)
            rows += thumbs
            sources["feedback"] = len(thumbs)
        if stage.kto_from_rankings:
            ranked = _candidate_rows(
                _ranking_rows(project, policy, judges, all_bad=True), "rankings"
            )
            rows += ranked
            sources["rankings"] = len(ranked)
    if judges:  # every row says whose it is; only rankings' rows can be a judge's
        rows = [r if r.voters else replace(r, voters=PEOPLE) for r in rows]
    return rows, is_chat(rows), sources
