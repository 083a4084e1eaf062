"""Build immutable dataset snapshots from a project's rankings."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from feedback_app.annotation.models import Ranking, Task
from feedback_app.core.artifacts import artifact_publish
from feedback_app.core.models import DatasetSnapshot, Project

from .dataset import (
    DEFAULT_TEST_FRACTION,
    content_hash,
    in_eval_set,
    in_test_split,
    jsonl_bytes,
    recency_copies,
    recency_weights,
)
from .pairs import PairPolicy
from .rows import dataset_rows, gold_pair_rows, stage_dataset_rows, trl_rows
from .stage_rows import StagePolicy, StageRow, trl_stage_row

Note = Callable[[str], None]


def snapshot_build(
    *,
    project: Project,
    policy: PairPolicy,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    job=None,
    note: Note | None = None,
    kind: str = DatasetSnapshot.Kind.PAIRS,
    stage: StagePolicy | None = None,
    extra_sources: dict[str, list[StageRow]] | None = None,
    hold_out_eval_set: bool = False,
    recency_half_life: float | None = None,
) -> DatasetSnapshot:
    """Every row of `project` under `policy` (`rows.dataset_rows`), split by prompt, written.

    Every round's rankings, not only the newest round's; `counts["rounds"]` says how many train
    pairs each round gave. `recency_half_life` (rounds; None: every round weighs the same)
    weights recent rounds more: train rows are repeated by `dataset.recency_copies` so that a
    round k rounds older weighs 0.5 ** (k / half_life) as much; the weights and the rows each
    round got are recorded (`policy["recency"]`, `counts["recency_rows"]`).

    `hold_out_eval_set` (what every build_dataset job, and so every training step, asks for):
    the rows of the project's fixed evaluation-set prompts (`dataset.in_eval_set`) go to the
    test split whatever the split says, first in it (`counts["yardstick"]` rows): never
    trained on, they are the reward model's random yardstick. The pairs of gold tasks' expected
    orders follow them (`counts["gold"]` rows, when there are any): the second yardstick.

    Same rankings + same policy + same split give the same bytes and so the same hash; building
    it again returns the snapshot already stored. `kind` "sft" or "kto" builds those rows
    instead (`rows.stage_dataset_rows`, sources chosen by `stage`, recorded in the snapshot).
    """
    note = note or (lambda _: None)
    if kind != DatasetSnapshot.Kind.PAIRS:
        return _stage_snapshot_build(
            project=project, kind=kind, policy=policy, stage=stage or StagePolicy(),
            test_fraction=test_fraction, seed=seed, job=job, note=note,
            extra_sources=extra_sources, hold_out=hold_out_eval_set,
        )  # fmt: skip
    pairs, chat, read = dataset_rows(project, policy)
    note(f"{read.rankings} rankings -> {read.candidate_pairs} candidate pairs -> {read.pairs} kept")
    if policy.include_feedback:
        note(f"deployment feedback -> {read.feedback_pairs} pairs")
    round_of = dict(Task.objects.filter(project=project).values_list("pk", "round"))
    train, test, yardstick, prompts_train, prompts_test = [], [], [], set(), set()
    train_rounds: list[str] = []  # each train row's round ("feedback": deployment feedback)
    for pair, row in zip(pairs, trl_rows(pairs, chat=chat), strict=True):
        h = pair.prompt.content_hash
        if hold_out_eval_set and in_eval_set(h):
            yardstick.append(row)  # the fixed random evaluation set: never trained on
            prompts_test.add(h)
        elif in_test_split(h, test_fraction=test_fraction, seed=seed):
            test.append(row)
            prompts_test.add(h)
        else:
            train.append(row)
            prompts_train.add(h)
            train_rounds.append(str(round_of[pair.task]) if pair.task else "feedback")
    gold = []
    if hold_out_eval_set:
        # Gold tasks' expected orders, right after the yardstick (`counts["gold"]` rows): an
        # admin's labels, never votes; a prompt some training row has is left out of them.
        golds = [
            p
            for p in gold_pair_rows(project)
            if p.prompt.content_hash not in prompts_train and (chat or p.prompt.messages is None)
        ]
        gold = trl_rows(golds, chat=chat)
    test = yardstick + gold + test  # `counts["yardstick"]`, then `counts["gold"]` rows

    recency = None
    by_round = dict(sorted(Counter(train_rounds).items(), key=lambda kv: _round_key(kv[0])))
    if recency_half_life is not None:
        train, recency, written = _recency_weighted(train, train_rounds, recency_half_life, seed)
        note(f"recency half-life {recency_half_life:g} rounds: rows a round {written}")
    counts = {
        "rankings": read.rankings,
        "candidate_pairs": read.candidate_pairs,
        "pairs": read.pairs,
        "train": len(train),
        "rounds": by_round,
        "test": len(test),
        "train_prompts": len(prompts_train),
        "test_prompts": len(prompts_test),
    }
    if hold_out_eval_set:
        counts["yardstick"] = len(yardstick)
    if gold:  # absent without gold tasks: such a snapshot's bytes are as before
        counts["gold"] = len(gold)
    if policy.include_feedback:
        counts["feedback_pairs"] = read.feedback_pairs
    if policy.include_edits:
        counts["edit_pairs"] = read.edit_pairs
    if recency is not None:
        counts["recency_rows"] = written
    recorded = policy.to_dict()
    if recency is not None:
        recorded["recency"] = recency
    if policy.discounts_flagged:
        # Whom the weight applied to: the flags of the report at build time, kept with the data.
        recorded["flagged_annotators"] = list(read.flagged)
        note(f"votes of {len(read.flagged)} flagged annotators weighted {policy.flagged_weight}")
    meta = {
        "policy": recorded,
        "test_fraction": test_fraction,
        "seed": seed,
        "format": "conversational" if chat else "standard",
        "counts": counts,
    }
    return _store(project, meta, train, test, read.through, job, note, "pairs")


def _round_key(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)


def _recency_weighted(
    train: list[dict], rounds: list[str], half_life: float, seed: int
) -> tuple[list[dict], dict, dict[str, int]]:
    """The train rows repeated by their round's weight (`dataset.recency_copies`); the record
    (half-life, newest round, each round's weight) and the rows each round got. Feedback has no
    round: it weighs as the newest one."""
    numbered = [int(r) for r in rounds if r.isdigit()]
    weights = {str(r): w for r, w in recency_weights(numbered, half_life).items()}
    weights.update({r: 1.0 for r in rounds if not r.isdigit()})
    copies = recency_copies([weights[r] for r in rounds], seed)
    out = [row for row, n in zip(train, copies, strict=True) for _ in range(n)]
    written: Counter[str] = Counter()
    for r, n in zip(rounds, copies, strict=True):
        written[r] += n
    record = {
        "half_life": half_life,
        "newest_round": max(numbered, default=None),
        "weights": {
            r: round(w, 6) for r, w in sorted(weights.items(), key=lambda kv: _round_key(kv[0]))
        },
    }
    return out, record, {r: written[r] for r in sorted(written, key=_round_key)}


def _store(
    project: Project,
    meta: dict,
    train: list[dict],
    test: list[dict],
    through: int,
    job,
    note: Note,
    what: str,
) -> DatasetSnapshot:
    files = [
        ("meta.json", json.dumps(meta, sort_keys=True, indent=1).encode()),
        ("train.jsonl", jsonl_bytes(train)),
        ("test.jsonl", jsonl_bytes(test)),
    ]
    digest = content_hash(files)
    folder = Path(settings.SNAPSHOT_DIR) / str(project.pk) / digest
    _write_once(folder, files)
    where = artifact_publish(folder, f"snapshots/{project.pk}/{digest}")
    note(f"snapshot {digest[:12]}: {len(train)} train / {len(test)} test {what}")
    with transaction.atomic():
        snapshot, _ = DatasetSnapshot.objects.get_or_create(
            project=project,
            content_hash=digest,
            defaults={
                "kind": meta.get("kind", DatasetSnapshot.Kind.PAIRS),
                "policy": meta["policy"],
                "test_fraction": meta["test_fraction"],
                "seed": meta["seed"],
                "path": where,
                "format": meta["format"],
                "counts": meta["counts"],
                "rankings_through": through,
                "job": job,
            },
        )
    return snapshot


def _stage_snapshot_build(
    *,
    project: Project,
    kind: str,
    policy: PairPolicy,
    stage: StagePolicy,
    test_fraction: float,
    seed: int,
    job,
    note: Note,
    extra_sources: dict[str, list[StageRow]] | None,
    hold_out: bool = False,
) -> DatasetSnapshot:
    """An SFT or KTO snapshot: its rows split by prompt like pairs, its sources recorded."""
    rows, chat, sources = stage_dataset_rows(project, kind, policy, stage, extra_sources)
    note(", ".join(f"{name} -> {n} rows" for name, n in sources.items()) or "no sources")
    train, test, prompts_train, prompts_test = [], [], set(), set()
    for row in rows:
        h = row.prompt.content_hash
        out = trl_stage_row(kind, row, chat=chat)
        if (hold_out and in_eval_set(h)) or in_test_split(
            h, test_fraction=test_fraction, seed=seed
        ):
            test.append(out)
            prompts_test.add(h)
        else:
            train.append(out)
            prompts_train.add(h)
    counts = {
        "rows": len(rows),
        "train": len(train),
        "test": len(test),
        "train_prompts": len(prompts_train),
        "test_prompts": len(prompts_test),
        "sources": sources,
    }
    meta = {
        "kind": kind,
        "policy": {**policy.to_dict(), **stage.to_dict()},
        "test_fraction": test_fraction,
        "seed": seed,
        "format": ("messages" if kind == "sft" else "conversational") if chat else "standard",
        "counts": counts,
    }
    through = (
        Ranking.objects.filter(task__project=project).order_by("-id").values_list("id", flat=True)
    ).first() or 0
    return _store(project, meta, train, test, through, job, note, f"{kind} rows")


def _write_once(folder: Path, files: list[tuple[str, bytes]]) -> None:
    """Write the files into a temporary folder and rename it into place: never half-written."""
    if folder.exists():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        for name, data in files:
            (tmp / name).write_bytes(data)
        os.chmod(tmp, 0o755)
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.exists():
            raise


def rankings_since_last_snapshot(*, project: Project) -> int:
    last = DatasetSnapshot.objects.filter(project=project).order_by("-rankings_through").first()
    through = last.rankings_through if last else 0
    return Ranking.objects.filter(task__project=project, pk__gt=through).count()
