"""Build immutable dataset snapshots from a project's rankings."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from feedback_app.annotation.models import Candidate, Prompt, Ranking, Task
from feedback_app.core.models import DatasetSnapshot, Project

from . import selectors
from .dataset import PromptView, content_hash, in_test_split, jsonl_bytes, trl_row
from .feedback import FeedbackRow, pairs_from_feedback
from .models import DeploymentFeedback
from .pairs import PairPolicy, aggregate, keep_pairs, select_rankings

Note = Callable[[str], None]


def snapshot_build(
    *,
    project: Project,
    policy: PairPolicy,
    test_fraction: float = 0.1,
    seed: int = 0,
    job=None,
    note: Note | None = None,
) -> DatasetSnapshot:
    """Aggregate every ranking of `project` into pairs, split by prompt, write and register.

    Same rankings + same policy + same split give the same bytes and so the same hash; building
    it again returns the snapshot already stored.
    """
    note = note or (lambda _: None)
    rows = selectors.ranking_rows(project=project)
    through = max((r.ranking_id for r in rows), default=0)
    votes = aggregate(select_rankings([r.row for r in rows], policy))
    kept = keep_pairs(votes, policy)
    note(f"{len(rows)} rankings -> {len(votes)} candidate pairs -> {len(kept)} kept")

    cand_ids = {v.a for v in kept} | {v.b for v in kept}
    texts = dict(Candidate.objects.filter(pk__in=cand_ids).values_list("pk", "text"))
    task_prompt = {
        t.pk: t.prompt
        for t in Task.objects.filter(pk__in={v.task_id for v in kept}).select_related("prompt")
    }
    triples = [(task_prompt[v.task_id], texts[v.chosen], texts[v.rejected]) for v in kept]
    if policy.include_feedback:
        feedback = _feedback_triples(project)
        note(f"deployment feedback -> {len(feedback)} pairs")
        triples += feedback
    chat = any(p.is_chat for p, _, _ in triples)
    train, test, prompts_train, prompts_test = [], [], set(), set()
    for p, chosen, rejected in triples:
        messages = (
            p.messages if p.is_chat else ([{"role": "user", "content": p.text}] if chat else None)
        )
        view = PromptView(content_hash=p.content_hash, text=p.text, messages=messages)
        row = trl_row(view, chosen, rejected)
        if in_test_split(p.content_hash, test_fraction=test_fraction, seed=seed):
            test.append(row)
            prompts_test.add(p.content_hash)
        else:
            train.append(row)
            prompts_train.add(p.content_hash)

    counts = {
        "rankings": len(rows),
        "candidate_pairs": len(votes),
        "pairs": len(kept),
        "train": len(train),
        "test": len(test),
        "train_prompts": len(prompts_train),
        "test_prompts": len(prompts_test),
    }
    if policy.include_feedback:
        counts["feedback_pairs"] = len(triples) - len(kept)
    meta = {
        "policy": policy.to_dict(),
        "test_fraction": test_fraction,
        "seed": seed,
        "format": "conversational" if chat else "standard",
        "counts": counts,
    }
    files = [
        ("meta.json", json.dumps(meta, sort_keys=True, indent=1).encode()),
        ("train.jsonl", jsonl_bytes(train)),
        ("test.jsonl", jsonl_bytes(test)),
    ]
    digest = content_hash(files)
    folder = Path(settings.SNAPSHOT_DIR) / str(project.pk) / digest
    _write_once(folder, files)
    note(f"snapshot {digest[:12]}: {len(train)} train / {len(test)} test pairs")
    with transaction.atomic():
        snapshot, _ = DatasetSnapshot.objects.get_or_create(
            project=project,
            content_hash=digest,
            defaults={
                "policy": policy.to_dict(),
                "test_fraction": test_fraction,
                "seed": seed,
                "path": str(folder),
                "format": meta["format"],
                "counts": counts,
                "rankings_through": through,
                "job": job,
            },
        )
    return snapshot


def _feedback_triples(project: Project) -> list[tuple[Prompt, str, str]]:
    """Pairs from deployment feedback, each with an unsaved Prompt standing for its prompt."""
    rows = DeploymentFeedback.objects.filter(project=project).order_by("id")
    prompts: dict[str, Prompt] = {}
    plain: list[FeedbackRow] = []
    for f in rows.iterator(chunk_size=2000):
        prompts.setdefault(
            f.prompt_hash,
            Prompt(text=f.prompt_text, messages=f.prompt_messages, content_hash=f.prompt_hash),
        )
        plain.append(FeedbackRow(f.prompt_hash, f.kind, f.response, f.rating, f.chosen, f.rejected))
    return [(prompts[h], chosen, rejected) for h, chosen, rejected in pairs_from_feedback(plain)]


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
