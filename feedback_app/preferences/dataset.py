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


def in_test_split(prompt_hash: str, *, test_fraction: float, seed: int) -> bool:
    """Deterministic split by prompt: the same prompt lands on the same side in every snapshot."""
    if test_fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{prompt_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


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
