"""Rankings + policy -> pair rows -> TRL rows: the one pipeline behind snapshots and the export.

Stages (the pure ones take and give plain values, no ORM):

1. `kept_by_task` (pure): rankings ordered by task -> the policy's kept pairs of each task.
2. `pair_rows_by_task`: kept pairs joined to prompt and candidate text, a chunk of tasks at a
   time (two queries a chunk), as `PairRow`s; `feedback_pair_rows` gives deployment feedback's
   pairs (`preferences.feedback`) in the same shape when the policy includes them.
3. `trl_rows` (pure): pair rows -> rows in TRL's format.

The chat rule, once for both: a dataset is *conversational* when any row it actually keeps has a
chat prompt (`is_chat_rows`); then the text prompts among its rows become one user message
each, so one dataset has one format. A chat prompt whose every pair is dropped by the policy
(flagged all-bad, a draw, filtered out) does not make it conversational. The export, streamed
before it has seen every row, asks `is_conversational`, which runs this same pipeline over the
chat prompts only and stops at the first row kept.

Rows come out ordered by task, then candidate pair, then feedback pairs (sorted): the same data
always gives the same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby, islice
from typing import NamedTuple

import orjson
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from feedback_app.annotation.models import Candidate, Demonstration, Ranking, Task
from feedback_app.common.storable import is_id
from feedback_app.core.models import Project

from .dataset import PromptView, trl_row
from .feedback import FeedbackRow, pairs_from_feedback
from .judge_figures import vote_weights
from .models import DeploymentFeedback
from .pairs import (
    FLAGS_THAT_DISCOUNT,
    PairPolicy,
    PairVotes,
    RankingRow,
    aggregate,
    flagged_weights,
    keep_pairs,
    pairs_from_ranking,
    select_rankings,
)
from .reports import flagged_annotators
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

TASKS_PER_CHUNK = 500
RANKINGS_PER_FETCH = 5000


@dataclass(frozen=True)
class RowQuery:
    """Which rows: the pair policy plus the export's filters (all optional).

    round/since/model narrow the rankings read (and `since`/`model` the feedback); `metadata`
    adds each pair's votes and origin to its row; `after_task` resumes after a task (pages).
    """

    policy: PairPolicy = PairPolicy()
    round: int | None = None
    model: str | None = None
    since: datetime | None = None
    metadata: bool = False
    after_task: int = 0


@dataclass
class Counts:
    """What the pipeline read and kept (a snapshot's counts)."""

    rankings: int = 0
    through: int = 0  # the highest ranking id read
    candidate_pairs: int = 0
    pairs: int = 0
    feedback_pairs: int = 0
    edit_pairs: int = 0
    flagged: tuple[int, ...] = ()  # annotators whose votes the policy weighted (or dropped)


class PairRow(NamedTuple):
    """One kept pair with its texts: what a TRL row is made of (`task` None for feedback)."""

    task: int | None
    prompt: PromptView
    chosen: str
    rejected: str
    extra: dict | None = None


# --- 1. rankings -> kept pairs (pure) --------------------------------------------------------


def kept_by_task(
    rankings: Iterable[tuple],
    policy: PairPolicy,
    counts: Counts | None = None,
    weights: Mapping[int, float] | None = None,
) -> Iterator[tuple[int, list[PairVotes]]]:
    """(task id, kept pairs) per task, from (id, task, annotator, groups, all_bad, unsafe) rows
    ordered by task. Tasks whose pairs are all dropped still appear (with no pairs).
    weights: annotator -> vote weight (`pairs.flagged_weights`)."""
    counts = counts if counts is not None else Counts()
    for task_id, rows in groupby(rankings, key=lambda r: r[1]):
        read = []
        for rid, *rest in rows:
            read.append(RankingRow(*rest))
            if rid > counts.through:
                counts.through = rid
        counts.rankings += len(read)
        votes = aggregate(select_rankings(read, policy, weights), weights)
        kept = keep_pairs(votes, policy)
        counts.candidate_pairs += len(votes)
        counts.pairs += len(kept)
        yield task_id, kept


# --- 3. pair rows -> TRL rows (pure) ---------------------------------------------------------


def is_chat_rows(rows: Iterable[PairRow]) -> bool:
    """The chat rule: conversational when any row kept has a chat prompt."""
    return any(r.prompt.messages is not None for r in rows)


def as_chat(prompt: PromptView) -> PromptView:
    """A text prompt as one user message (in a conversational dataset); a chat unchanged."""
    if prompt.messages is not None:
        return prompt
    return PromptView(prompt.content_hash, messages=[{"role": "user", "content": prompt.text}])


def trl_rows(rows: Iterable[PairRow], *, chat: bool) -> list[dict]:
    """Pair rows in TRL's format: conversational throughout when `chat`, else standard."""
    return [
        trl_row(as_chat(r.prompt) if chat else r.prompt, r.chosen, r.rejected, r.extra)
        for r in rows
    ]


def jsonl_rows(rows: Iterable[PairRow], *, chat: bool) -> bytes:
    """`trl_rows` as canonical JSONL, the bytes `dataset.jsonl_bytes` gives for them.

    The export's hot loop: a row without metadata is assembled from its three values, each
    encoded once a call (a candidate is in K-1 pairs, a prompt in every pair of its task).
    """
    out = bytearray()
    texts: dict[str, bytes] = {}  # a completion's JSON, by its text
    last_prompt: PromptView | None = None
    pj = b""
    dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS
    for r in rows:
        p = r.prompt
        if r.extra:
            out += dumps(
                trl_row(as_chat(p) if chat else p, r.chosen, r.rejected, r.extra), option=sort
            )
            out += b"\n"
            continue
        if p is not last_prompt:  # rows of one task share their PromptView
            last_prompt = p
            pj = dumps(as_chat(p).messages if chat else p.text, option=sort)
        c, j = r.chosen, r.rejected
        if (cj := texts.get(c)) is None:
            cj = texts[c] = _completion(c, chat)
        if (rj := texts.get(j)) is None:
            rj = texts[j] = _completion(j, chat)
        out += b'{"chosen":%b,"prompt":%b,"rejected":%b}\n' % (cj, pj, rj)
    return bytes(out)


def _completion(text: str, chat: bool) -> bytes:
    if chat:
        return orjson.dumps([{"content": text, "role": "assistant"}])
    return orjson.dumps(text)


# --- 2. reads: kept pairs joined to their texts ----------------------------------------------


def _rankings(project: Project, q: RowQuery, *, chats_only: bool = False) -> QuerySet:
    # The votes: never a gold task's rankings (they measure annotators, models.Task.gold), nor
    # a ranking an admin dropped (models.RankingDrop).
    qs = Ranking.objects.filter(
        task__project=project, task__gold__isnull=True, dropped__isnull=True
    )
    if q.after_task:
        qs = qs.filter(task_id__gt=q.after_task)
    if q.round is not None:
        qs = qs.filter(task__round=q.round)
    if q.since is not None:
        qs = qs.filter(created_at__gte=q.since)
    if chats_only:
        qs = qs.filter(task__prompt__messages__isnull=False)
    # The groups as JSON text, parsed by orjson (`_parsed`): Django's JSONField converter
    # (json.loads a ranking) was a tenth of the export's time.
    return (
        qs.order_by("task_id", "id")
        .annotate(groups_json=Cast("groups", TextField()))
        .values_list("id", "task_id", "annotator_id", "groups_json", "all_bad", "unsafe")
    )


def _parsed(rows: Iterable[tuple]) -> Iterator[tuple]:
    loads = orjson.loads
    for rid, task, annotator, groups, all_bad, unsafe in rows:
        yield rid, task, annotator, loads(groups), all_bad, unsafe


def pair_rows_by_task(
    project: Project,
    q: RowQuery,
    *,
    counts: Counts | None = None,
    chats_only: bool = False,
) -> Iterator[tuple[int, list[PairRow]]]:
    """(task id, its pair rows) for every task with rankings, in task order, in flat memory.

    Rankings are read with one server-side cursor ordered by task, so each task's rankings
    arrive together; texts are read a chunk of TASKS_PER_CHUNK tasks at a time.
    """
    weights = None
    if q.policy.discounts_flagged:
        flagged = flagged_annotators(project=project, codes=FLAGS_THAT_DISCOUNT)
        weights = flagged_weights(q.policy, flagged)
        if counts is not None:
            counts.flagged = tuple(sorted(flagged))
    weights = vote_weights(project=project, policy=q.policy, weights=weights)
    per_task = kept_by_task(
        _parsed(
            _rankings(project, q, chats_only=chats_only).iterator(chunk_size=RANKINGS_PER_FETCH)
        ),
        q.policy,
        counts,
        weights,
    )
    while chunk := list(islice(per_task, TASKS_PER_CHUNK)):
        yield from _rows_for_chunk(project.pk, chunk, q)


def _rows_for_chunk(
    project_id: int, chunk: list[tuple[int, list[PairVotes]]], q: RowQuery
) -> Iterator[tuple[int, list[PairRow]]]:
    with_pairs = [t for t, kept in chunk if kept]
    if not with_pairs:
        yield from ((t, []) for t, _ in chunk)
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
    model, metadata = q.model, q.metadata
    for task_id, kept in chunk:
        rows = []
        if kept:
            rnd, prompt = tasks[task_id]
            for v in kept:
                # v.chosen / v.rejected written out (a million times an export)
                a, b = (v.a, v.b) if v.for_a > v.for_b else (v.b, v.a)
                chosen, rejected = cands[a], cands[b]
                if model and not _matches_model(model, chosen, rejected):
                    continue
                extra = _metadata(v, rnd, chosen, rejected) if metadata else None
                if q.policy.with_margin:  # vote strength as TRL's reward-model `margin`
                    extra = {**(extra or {}), "margin": round(v.margin, 6)}
                rows.append(PairRow(task_id, prompt, chosen[0], rejected[0], extra))
        yield task_id, rows


def _matches_model(model: str, *cands: tuple) -> bool:
    if is_id(model):
        return any(c[1] == int(model) for c in cands)
    return any(c[2] == model for c in cands)


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


def feedback_pair_rows(project: Project, q: RowQuery) -> list[PairRow]:
    """Deployment feedback's pairs (when the policy includes them), sorted, as pair rows.

    Feedback has no round: a query for one round gets none. `since` filters on when it was
    given; `model` on the model version that answered (id or name).
    """
    if not q.policy.include_feedback or q.round is not None:
        return []
    qs = DeploymentFeedback.objects.filter(project=project)
    if q.since is not None:
        qs = qs.filter(created_at__gte=q.since)
    if q.model:
        qs = qs.filter(
            Q(model_version_id=int(q.model)) if is_id(q.model) else Q(model_version__name=q.model)
        )
    prompts: dict[str, PromptView] = {}
    plain: list[FeedbackRow] = []
    for h, text, messages, kind, response, rating, chosen, rejected in (
        qs.order_by("id")
        .values_list(
            "prompt_hash",
            "prompt_text",
            "prompt_messages",
            "kind",
            "response",
            "rating",
            "chosen",
            "rejected",
        )
        .iterator(chunk_size=2000)
    ):
        prompts.setdefault(h, PromptView(content_hash=h, text=text, messages=messages))
        plain.append(FeedbackRow(h, kind, response, rating, chosen, rejected))
    extra = {"origin": "feedback"} if q.metadata else None
    return [PairRow(None, prompts[h], c, r, extra) for h, c, r in pairs_from_feedback(plain)]


def gold_pair_rows(project: Project) -> list[PairRow]:
    """Every pair of every gold task's expected order (`Task.gold`), in task order.

    Never training data (a gold task's rankings are no votes either): an admin's order is the
    reward model's second yardstick beside the random evaluation set (`snapshot_build`).
    """
    rows = []
    tasks = (
        Task.objects.filter(project=project, gold__isnull=False)
        .order_by("id")
        .values_list("pk", "gold", "prompt__content_hash", "prompt__text", "prompt__messages")
    )
    for task, gold, h, text, messages in tasks:
        texts = dict(Candidate.objects.filter(task_id=task).values_list("pk", "text"))
        prompt = PromptView(content_hash=h, text=text, messages=messages)
        rows.extend(
            PairRow(task, prompt, texts[a], texts[b])
            for a, b in pairs_from_ranking(gold)
            if a in texts and b in texts
        )
    return rows


def _demonstrations(project: Project, q: RowQuery, *, edits: bool) -> QuerySet:
    qs = Demonstration.objects.filter(task__project=project)
    if edits:
        qs = qs.filter(edited_from__isnull=False)
    if q.round is not None:
        qs = qs.filter(task__round=q.round)
    if q.since is not None:
        qs = qs.filter(created_at__gte=q.since)
    return qs.order_by("task_id", "id")


def edit_pair_rows(project: Project, q: RowQuery) -> list[PairRow]:
    """The policy's edit pairs: each edited candidate's edit (chosen) over it (rejected)."""
    if not q.policy.include_edits or q.model:
        return []
    extra = {"origin": "edit"} if q.metadata else None
    if q.policy.with_margin:  # one annotator's deliberate edit: a full-strength vote
        extra = {**(extra or {}), "margin": 1.0}
    return [
        PairRow(task, PromptView(content_hash=h, text=text, messages=messages), edit, original,
                extra)
        for task, h, text, messages, edit, original in _demonstrations(
            project, q, edits=True
        ).values_list("task_id", "task__prompt__content_hash", "task__prompt__text",
                      "task__prompt__messages", "text", "edited_from__text")
    ]  # fmt: skip


def demonstration_rows(project: Project) -> list[StageRow]:
    """Every demonstration as an SFT row (written answers and edits alike)."""
    return [
        StageRow(PromptView(content_hash=h, text=text, messages=messages), answer, None,
                 "demonstrations")
        for h, text, messages, answer in _demonstrations(project, RowQuery(), edits=False)
        .values_list("task__prompt__content_hash", "task__prompt__text",
                     "task__prompt__messages", "text")
    ]  # fmt: skip


def is_conversational(project: Project, q: RowQuery) -> bool:
    """The chat rule for a query whose rows are not all read yet (a stream, a page).

    Runs the pipeline over the chat prompts only, from the first task whatever the page, and
    stops at the first row kept: every page of an export has the format of the whole export.
    """
    whole = RowQuery(q.policy, q.round, q.model, q.since, metadata=False)
    for _, rows in pair_rows_by_task(project, whole, chats_only=True):
        if rows:
            return True
    return is_chat_rows(feedback_pair_rows(project, whole) + edit_pair_rows(project, whole))


# --- the two consumers' entry points ---------------------------------------------------------

FLUSH_ROWS = 2000  # about 200-500 kB of JSONL


def stream_jsonl(project: Project, q: RowQuery) -> Iterator[bytes]:
    """The export as JSONL bytes, flushed every FLUSH_ROWS rows (and after the first task)."""
    chat = is_conversational(project, q)
    pending: list[PairRow] = []
    first = True
    for _, rows in pair_rows_by_task(project, q):
        pending += rows
        if (first and pending) or len(pending) >= FLUSH_ROWS:
            yield jsonl_rows(pending, chat=chat)
            pending, first = [], False
    pending += feedback_pair_rows(project, q) + edit_pair_rows(project, q)
    if pending:
        yield jsonl_rows(pending, chat=chat)


def page(project: Project, q: RowQuery, *, size: int) -> tuple[list[dict], int | None]:
    """At least `size` rows (whole tasks) and the task id to continue after, or None at the end.

    Feedback pairs, which have no task, come on the last page.
    """
    chat = is_conversational(project, q)
    out: list[PairRow] = []
    last = None
    for task_id, rows in pair_rows_by_task(project, q):
        out += rows
        last = task_id
        if len(out) >= size:
            return trl_rows(out, chat=chat), last
    out += feedback_pair_rows(project, q) + edit_pair_rows(project, q)
    return trl_rows(out, chat=chat), None


def dataset_rows(project: Project, policy: PairPolicy) -> tuple[list[PairRow], bool, Counts]:
    """Every pair row of the project under `policy` (a snapshot's), the chat rule, and counts."""
    counts = Counts()
    q = RowQuery(policy)
    rows = [r for _, task_rows in pair_rows_by_task(project, q, counts=counts) for r in task_rows]
    feedback = feedback_pair_rows(project, q)
    counts.feedback_pairs = len(feedback)
    rows += feedback
    edits = edit_pair_rows(project, q)
    counts.edit_pairs = len(edits)
    rows += edits
    return rows, is_chat_rows(rows), counts


# --- the unpaired kinds: SFT and KTO rows (`stage_rows.py` holds their rules) ------------------


def _ranked_tasks(project: Project) -> Iterator[tuple[int, list[RankingRow]]]:
    """(task id, its rankings) in task order, every ranking (all-bad ones too)."""
    rows = _parsed(_rankings(project, RowQuery()).iterator(chunk_size=RANKINGS_PER_FETCH))
    for task_id, group in groupby(rows, key=lambda r: r[1]):
        yield task_id, [RankingRow(*rest) for _rid, *rest in group]


def _ranking_rows(
    project: Project, policy: PairPolicy, *, all_bad: bool
) -> list[tuple[int, int, bool]]:
    """(task, candidate, desirable): unanimous top candidates, and (`all_bad`) every candidate
    of a task flagged all-bad by most of its rankings."""
    out = []
    for task_id, rankings in _ranked_tasks(project):
        out.extend((task_id, c, True) for c in unanimous_top(rankings, policy))
        if all_bad and all_bad_task(rankings):
            out.extend((task_id, c, False) for g in rankings[0].groups for c in sorted(g))
    return out


def _candidate_rows(chosen: list[tuple[int, int, bool]], source: str) -> list[StageRow]:
    out = []
    for lo in range(0, len(chosen), TASKS_PER_CHUNK):
        chunk = chosen[lo : lo + TASKS_PER_CHUNK]
        texts = dict(
            Candidate.objects.filter(pk__in=[c for _, c, _ in chunk]).values_list("pk", "text")
        )
        prompts = {
            pk: PromptView(content_hash=h, text=text, messages=messages)
            for pk, text, messages, h in Task.objects.filter(
                pk__in={t for t, _, _ in chunk}
            ).values_list("pk", "prompt__text", "prompt__messages", "prompt__content_hash")
        }
        out.extend(StageRow(prompts[t], texts[c], label, source) for t, c, label in chunk)
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
    for name, extra in (extra_sources or {}).items():
        rows += extra
        sources[name] = len(extra)
    if kind == SFT and stage.sft_from_demonstrations:
        demos = demonstration_rows(project)
        rows += demos
        sources["demonstrations"] = len(demos)
    if kind == SFT and stage.sft_from_rankings:
        ranked = _candidate_rows(_ranking_rows(project, policy, all_bad=False), "rankings")
        rows += ranked
        sources["rankings"] = len(ranked)
    if kind == KTO:
        if stage.kto_from_feedback:
            thumbs = _thumbs_rows(project)
            rows += thumbs
            sources["feedback"] = len(thumbs)
        if stage.kto_from_rankings:
            ranked = _candidate_rows(_ranking_rows(project, policy, all_bad=True), "rankings")
            rows += ranked
            sources["rankings"] = len(ranked)
    return rows, is_chat(rows), sources
