"""Kept pairs -> rows in TRL's preference format, a split by prompt, and a content hash. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class PromptView:
    """A prompt as the dataset needs it: plain text, or chat messages."""

    content_hash: str
    text: str = ""
    messages: list[dict] | None = None


def trl_row(prompt: PromptView, chosen: str, rejected: str, extra: dict | None = None) -> dict:
    """One row TRL's DPOTrainer / RewardTrainer read unchanged.

    Text prompts give the standard form {"prompt", "chosen", "rejected"} (strings); chat prompts
    give the conversational form, completions as one assistant message each.
    """
    if prompt.messages is not None:
        row = {
            "prompt": prompt.messages,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
    else:
        row = {"prompt": prompt.text, "chosen": chosen, "rejected": rejected}
    if extra:
        row.update(extra)
    return row


# The share of prompts held out for testing when a build does not say (jobs, forms, autopilot).
DEFAULT_TEST_FRACTION = 0.1


def in_test_split(prompt_hash: str, *, test_fraction: float, seed: int | str) -> bool:
    """Deterministic split by prompt: the same prompt lands on the same side in every snapshot."""
    if test_fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{prompt_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


# The project's fixed evaluation set: this share of its prompts, drawn at random by content hash
# (fixed per prompt, whatever else is imported, whatever a snapshot's seed). Active selection
# never picks them (finetuning/runners/generation.py asks them at random), training never sees
# them (a snapshot writes their rows to the test split), and the gate reads the reward model's
# accuracy and the policy's win rate on them: what the policy was not optimised against.
EVAL_SET_FRACTION = 0.2
EVAL_SET_SALT = "evaluation-set"


def in_eval_set(prompt_hash: str, *, fraction: float = EVAL_SET_FRACTION) -> bool:
    """Whether a prompt belongs to its project's fixed random evaluation set."""
    return in_test_split(prompt_hash, test_fraction=fraction, seed=EVAL_SET_SALT)


def jsonl_bytes(rows: Iterable[dict]) -> bytes:
    """Canonical JSONL (sorted keys, no spaces, UTF-8): the same rows always give the same bytes.

    orjson, for speed; for rows of text (all a dataset holds) its bytes are those of
    `json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))`, so snapshots built
    before keep their hash (tests/preferences/test_dataset.py).
    """
    option = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    return b"".join(orjson.dumps(r, option=option) for r in rows)


def content_hash(parts: Sequence[tuple[str, bytes]]) -> str:
    """sha256 over named files, in order: identical data always hashes the same."""
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


# --- weighting recent rounds more (a snapshot's `recency_half_life`) --------------------------

RECENCY_HALF_LIFE = (0, 1000)  # rounds; exclusive low: a half-life of 0 would weight nothing


def recency_weights(rounds: Iterable[int], half_life: float) -> dict[int, float]:
    """Each round's weight: 0.5 ** ((newest - round) / half_life), the newest round 1.

    >>> recency_weights([1, 2, 3], 1.0)
    {1: 0.25, 2: 0.5, 3: 1.0}
    """
    seen = sorted(set(rounds))
    if not seen:
        return {}
    return {r: 0.5 ** ((seen[-1] - r) / half_life) for r in seen}


def recency_copies(weights: Sequence[float], seed: int | str) -> list[int]:
    """How many times each train row goes into the file so that the rows' share of an epoch
    follows their weights, the epoch keeping its size (the copies sum to len(weights)).

    Why copies and not a loss weight: TRL's RewardTrainer and DPOTrainer (1.16) take no per-row
    weight, and every policy stage reads the same train file; a row repeated k times in an
    epoch weighs k times in expectation, whatever trainer reads it. Row i's expected count is
    c_i = n w_i / sum(w); systematic sampling (one offset u drawn with `seed`, so the same
    snapshot gives the same bytes) gives it floor(c_i) or ceil(c_i) copies, the total exactly
    n. Equal weights: one copy each, the file unchanged. A row of an old round may get none:
    down-weighted, not always seen.

    >>> recency_copies([1.0, 1.0, 1.0], 0)
    [1, 1, 1]
    >>> recency_copies([4.0, 4.0, 1.0, 1.0], 0)  # expected 1.6, 1.6, 0.4, 0.4
    [2, 2, 0, 0]
    """
    import math
    import random

    total = sum(weights)
    if not weights or total <= 0:
        return [0] * len(weights)
    n = len(weights)
    u = random.Random(f"recency:{seed}").random()
    out, before, cumulative = [], math.floor(u), 0.0
    for w in weights:
        cumulative += n * w / total
        after = math.floor(cumulative + u + 1e-9)
        out.append(after - before)
        before = after
    return out
