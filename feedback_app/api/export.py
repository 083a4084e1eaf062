"""Stream a project's preference pairs in TRL's format, one task at a time, in flat memory.

Rankings are read with one server-side cursor (``.iterator()``) ordered by task, so each
task's rankings arrive together: they are aggregated and filtered with the same pure
functions as snapshots (`aggregate`, `select_rankings`, `keep_pairs`), then joined to prompt
and candidate text one chunk of tasks at a time (two queries a chunk). Rows come out ordered
by task, then candidate pair: the same data always exports in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby, islice

from django.db.models import QuerySet

from feedback_app.annotation.models import Candidate, Prompt, Ranking, Task
from feedback_app.common.storable import is_id
from feedback_app.core.models import Project
from feedback_app.preferences.dataset import PromptView, jsonl_bytes, trl_row
from feedback_app.preferences.pairs import (
    PairPolicy,
    PairVotes,
    RankingRow,
    aggregate,
    keep_pairs,
    select_rankings,
)

TASKS_PER_CHUNK = 500
RANKINGS_PER_FETCH = 5000
FLUSH_ROWS = 2000  # about 200-500 kB of JSONL


@dataclass(frozen=True)
class PairQuery:
    """What to export: the pair policy plus filters (all optional)."""

    policy: PairPolicy = PairPolicy()
    round: int | None = None
    model: str | None = None
    since: datetime | None = None
    metadata: bool = False
    after_task: int = 0


def _rankings(project: Project, q: PairQuery) -> QuerySet:
    qs = Ranking.objects.filter(task__project=project)
    if q.after_task:
        qs = qs.filter(task_id__gt=q.after_task)
    if q.round is not None:
        qs = qs.filter(task__round=q.round)
    if q.since is not None:
        qs = qs.filter(created_at__gte=q.since)
    return qs.order_by("task_id", "id").values_list(
        "task_id", "annotator_id", "groups", "all_bad", "unsafe"
    )


def is_conversational(project: Project, q: PairQuery) -> bool:
    """One export, one format: conversational if any exported prompt is a chat (as snapshots)."""
    prompts = Prompt.objects.filter(project=project, messages__isnull=False)
    if q.round is not None:
        prompts = prompts.filter(tasks__round=q.round)
    return prompts.filter(tasks__rankings__isnull=False).exists()


def _matches_model(model: str, *cands: tuple) -> bool:
    if is_id(model):
        return any(c[1] == int(model) for c in cands)
    return any(c[2] == model for c in cands)


def _kept_by_task(rows: Iterable[tuple], policy: PairPolicy) -> Iterator[tuple[int, list]]:
    for task_id, task_rows in groupby(rows, key=lambda r: r[0]):
        chosen = select_rankings((RankingRow(*r) for r in task_rows), policy)
        yield task_id, keep_pairs(aggregate(chosen), policy)


def pair_rows_by_task(
    project: Project, q: PairQuery, *, chat: bool | None = None
) -> Iterator[tuple[int, list[dict]]]:
    """(task id, its rows in TRL's format) for every task with rankings, in task order."""
    chat = is_conversational(project, q) if chat is None else chat
    per_task = _kept_by_task(
        _rankings(project, q).iterator(chunk_size=RANKINGS_PER_FETCH), q.policy
    )
    while chunk := list(islice(per_task, TASKS_PER_CHUNK)):
        yield from _rows_for_chunk(project.pk, chunk, q, chat)


def _rows_for_chunk(
    project_id: int, chunk: list[tuple[int, list[PairVotes]]], q: PairQuery, chat: bool
) -> Iterator[tuple[int, list]]:
    with_pairs = [t for t, kept in chunk if kept]
    if not with_pairs:
        yield from chunk
        return
    # A range of task ids, not a list: building and planning `IN (2000 ids)` cost more than
    # the rows it saves. No join to the task for its project either: the planner then scans
    # the whole task table per chunk. Rows of other projects' tasks inside the range are read
    # but never used (only ids of kept pairs are looked up).
    lo, hi = with_pairs[0], with_pairs[-1]
    cands = {
        pk: (text, version, source)
        for pk, text, version, source in Candidate.objects.filter(task_id__gte=lo, task_id__lte=hi)
        .order_by()
        .values_list("pk", "text", "model_version_id", "source")
    }
    tasks = {
        pk: (rnd, PromptView(content_hash=h, text=text, messages=messages))
        for pk, rnd, text, messages, h in Task.objects.filter(
            project_id=project_id, pk__range=(lo, hi)
        )
        .order_by()
        .values_list("pk", "round", "prompt__text", "prompt__messages", "prompt__content_hash")
    }
    for task_id, kept in chunk:
        rows = []
        for v in kept:
            chosen, rejected = cands[v.chosen], cands[v.rejected]
            if q.model and not _matches_model(q.model, chosen, rejected):
                continue
            rnd, prompt = tasks[task_id]
            if chat and prompt.messages is None:
                prompt = PromptView(
                    prompt.content_hash, messages=[{"role": "user", "content": prompt.text}]
                )
            extra = _metadata(v, rnd, chosen, rejected) if q.metadata else None
            rows.append(trl_row(prompt, chosen[0], rejected[0], extra))
        yield task_id, rows


def _metadata(v: PairVotes, rnd: int, chosen: tuple, rejected: tuple) -> dict:
    return {
        "votes": v.votes,
        "ties": v.ties,
        "judges": v.total,
        "agreement": round(v.agreement, 6),
        "margin": round(v.margin, 6),
        "chosen_model": chosen[2] or None,
        "rejected_model": rejected[2] or None,
        "round": rnd,
        "task": v.task_id,
        "chosen_id": v.chosen,
        "rejected_id": v.rejected,
    }


def stream_jsonl(project: Project, q: PairQuery) -> Iterator[bytes]:
    """The export as JSONL bytes, flushed every FLUSH_ROWS rows (and after the first task)."""
    pending: list[dict] = []
    first = True
    for _, rows in pair_rows_by_task(project, q):
        pending.extend(rows)
        if (first and pending) or len(pending) >= FLUSH_ROWS:
            yield jsonl_bytes(pending)
            pending, first = [], False
    if pending:
        yield jsonl_bytes(pending)


def page(project: Project, q: PairQuery, *, size: int) -> tuple[list[dict], int | None]:
    """At least `size` rows (whole tasks) and the task id to continue after, or None at the end."""
    out: list[dict] = []
    last = None
    for task_id, rows in pair_rows_by_task(project, q):
        out.extend(rows)
        last = task_id
        if len(out) >= size:
            return out, last
    return out, None
