"""Preference pairs in TRL's format: validation, JSONL files, tokenisation like DPOTrainer's.

Two formats, one per list (TRL reads a dataset in one format):
- standard: {"prompt": str, "chosen": str, "rejected": str}
- conversational: {"prompt": [messages], "chosen": [messages], "rejected": [messages]}
  where a message is {"role": str, "content": str}.
An optional numeric "margin" is passed through to the reward model (TRL's margin loss).
Completions should start on a token boundary (a leading space, or a chat template); otherwise
TRL trains on part of the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PAIR_KEYS = ("prompt", "chosen", "rejected")
Prompt = str | list[dict[str, str]]


class PairError(ValueError):
    """A preference pair is malformed; the message names its index and key."""


def _check_messages(value: Any, where: str) -> None:
    if not isinstance(value, list) or not value:
        raise PairError(f"{where}: must be a non-empty list of messages")
    for j, message in enumerate(value):
        if not isinstance(message, dict):
            raise PairError(f"{where}[{j}]: a message must be a dict with 'role' and 'content'")
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                raise PairError(f"{where}[{j}]['{key}']: must be a string")


def pair_format(pair: Any, index: int = 0) -> str:
    """Return "standard" or "conversational" for one pair, or raise PairError."""
    if not isinstance(pair, dict):
        raise PairError(f"pairs[{index}]: must be a dict, got {type(pair).__name__}")
    for key in PAIR_KEYS:
        if key not in pair:
            raise PairError(f"pairs[{index}]['{key}']: missing")
    conversational = isinstance(pair["prompt"], list)
    for key in PAIR_KEYS:
        where = f"pairs[{index}]['{key}']"
        if conversational:
            _check_messages(pair[key], where)
        elif not isinstance(pair[key], str):
            raise PairError(f"{where}: must be a string (or every field a message list)")
        elif key != "prompt" and not pair[key].strip():
            raise PairError(f"{where}: must not be empty")
    if "margin" in pair and (
        isinstance(pair["margin"], bool) or not isinstance(pair["margin"], int | float)
    ):
        raise PairError(f"pairs[{index}]['margin']: must be a number")
    if pair["chosen"] == pair["rejected"]:
        raise PairError(f"pairs[{index}]['rejected']: identical to 'chosen'")
    return "conversational" if conversational else "standard"


def validate_pairs(pairs: Sequence[dict[str, Any]]) -> str:
    """Check every pair; return the common format. Raises PairError naming index and key."""
    if not isinstance(pairs, Sequence) or isinstance(pairs, str | bytes):
        raise PairError("pairs: must be a list of dicts")
    if not pairs:
        raise PairError("pairs: must not be empty")
    first = pair_format(pairs[0], 0)
    for i, pair in enumerate(pairs[1:], start=1):
        fmt = pair_format(pair, i)
        if fmt != first:
            raise PairError(f"pairs[{i}]: {fmt} pair in a {first} list (mixing formats)")
    if "margin" in pairs[0] and not all("margin" in p for p in pairs):
        missing = next(i for i, p in enumerate(pairs) if "margin" not in p)
        raise PairError(f"pairs[{missing}]['margin']: missing (pairs[0] has one)")
    return first


def pairs_to_dataset(pairs: Sequence[dict[str, Any]]) -> Any:
    """A `datasets.Dataset` with only the columns TRL reads (extra keys are dropped)."""
    from datasets import Dataset

    validate_pairs(pairs)
    keys = [*PAIR_KEYS, *(["margin"] if "margin" in pairs[0] else [])]
    return Dataset.from_list([{k: p[k] for k in keys} for p in pairs])


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read one JSON object per non-empty line; errors name the line number."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PairError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
    return rows


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def is_chat(prompt: Prompt) -> bool:
    return isinstance(prompt, list)


def render_prompt(tokenizer: Any, prompt: Prompt) -> str:
    """The text the model continues: a chat gets the template plus the assistant header."""
    if is_chat(prompt):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return prompt


def _ids(tokenizer: Any, value: str | list[dict[str, str]], **chat_kwargs: Any) -> list[int]:
    if isinstance(value, list):
        out = tokenizer.apply_chat_template(value, tokenize=True, return_dict=True, **chat_kwargs)
        return list(out["input_ids"])
    return list(tokenizer(text=value)["input_ids"])


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def tokenize_pair(tokenizer: Any, pair: dict[str, Any]) -> dict[str, list[int]]:
    """Token ids of one pair, split as TRL 1.16's DPOTrainer splits them.

    Standard: eos is appended to both completions; conversational: the chat template renders
    prompt + completion. The completion starts where the tokenised prompt and the tokenised
    prompt + completion diverge (usually right after the prompt).

    Example: prompt "a b", chosen " c" -> {"prompt_ids": [a, b], "chosen_ids": [c, eos], ...}
    """
    prompt, chosen, rejected = pair["prompt"], pair["chosen"], pair["rejected"]
    if isinstance(prompt, list):
        prompt_ids = _ids(tokenizer, prompt, add_generation_prompt=True)
        chosen_full = _ids(tokenizer, prompt + chosen)
        rejected_full = _ids(tokenizer, prompt + rejected)
    else:
        eos = tokenizer.eos_token or ""
        chosen = chosen if chosen.endswith(eos) else chosen + eos
        rejected = rejected if rejected.endswith(eos) else rejected + eos
        prompt_ids = _ids(tokenizer, prompt)
        chosen_full = _ids(tokenizer, prompt + chosen)
        rejected_full = _ids(tokenizer, prompt + rejected)
    n = min(
        common_prefix_length(prompt_ids, chosen_full),
        common_prefix_length(prompt_ids, rejected_full),
    )
    return {
        "prompt_ids": prompt_ids[:n],
        "chosen_ids": chosen_full[n:],
        "rejected_ids": rejected_full[n:],
    }


def full_text(tokenizer: Any, prompt: Prompt, completion: str | list[dict[str, str]]) -> str:
    """Prompt + completion as the reward model reads it (chat template for messages)."""
    if isinstance(prompt, list):
        messages = (
            completion
            if isinstance(completion, list)
            else [{"role": "assistant", "content": completion}]
        )
        return tokenizer.apply_chat_template(prompt + messages, tokenize=False)
    text = prompt + (completion if isinstance(completion, str) else completion[0]["content"])
    eos = tokenizer.eos_token or ""
    return text if text.endswith(eos) else text + eos


def completion_text(completion: str | list[dict[str, str]]) -> str:
    """The assistant text of a completion (a string, or the content of its messages)."""
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] for m in completion)


# --- The other dataset kinds: SFT rows, unpaired KTO rows, prompts for online RL -------------
#
# SFT: {"prompt": str, "completion": str}, or both message lists (conversational), or
#      {"messages": [...]} ending with an assistant turn.
# KTO: {"prompt": str, "completion": str, "label": bool} (or message lists), label True for a
#      thumbs up.
# Online RL (GRPO, RLOO): {"prompt": str} or {"prompt": [messages]}; the rest is generated.
# Every check raises PairError naming the row and key, before any model is loaded.

MIN_ROWS = 2  # fewer is no dataset: KTO's KL estimate alone pairs a prompt with another row


def _kind_of(row: dict[str, Any]) -> str:
    """What a row looks like, for the "wrong kind for the stage" message."""
    if "chosen" in row or "rejected" in row:
        return "preference pairs"
    if "label" in row:
        return "KTO rows"
    if "messages" in row:
        return "chat SFT rows"
    if "completion" in row:
        return "SFT rows"
    return "prompts"


def _check_rows(rows: Any, stage: str, accepts: tuple[str, ...], minimum: int = MIN_ROWS) -> None:
    """A list of at least `minimum` dicts, each of a kind the stage accepts."""
    if not isinstance(rows, Sequence) or isinstance(rows, str | bytes):
        raise PairError("rows: must be a list of dicts")
    if len(rows) < minimum:
        raise PairError(f"rows: {stage} needs at least {minimum} rows, got {len(rows)}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise PairError(f"rows[{i}]: must be a dict, got {type(row).__name__}")
        kind = _kind_of(row)
        if kind not in accepts:
            raise PairError(
                f"rows[{i}]: {kind} given to {stage}, which takes {' or '.join(accepts)}"
            )


def _check_text_or_messages(value: Any, where: str, conversational: bool) -> None:
    if conversational:
        _check_messages(value, where)
    elif not isinstance(value, str):
        raise PairError(f"{where}: must be a string (or every field a message list)")
    elif not value.strip():
        raise PairError(f"{where}: must not be empty")


def _same_format(rows: Sequence[dict[str, Any]], formats: list[str]) -> str:
    first = formats[0]
    for i, fmt in enumerate(formats):
        if fmt != first:
            raise PairError(f"rows[{i}]: {fmt} row in a {first} list (mixing formats)")
    return first


def _prompt_completion_format(row: dict[str, Any], i: int) -> str:
    for key in ("prompt", "completion"):
        if key not in row:
            raise PairError(f"rows[{i}]['{key}']: missing")
    conversational = isinstance(row["prompt"], list)
    for key in ("prompt", "completion"):
        _check_text_or_messages(row[key], f"rows[{i}]['{key}']", conversational)
    return "conversational" if conversational else "standard"


def validate_sft_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Check SFT rows; return "standard", "conversational" or "messages"."""
    _check_rows(rows, "SFT", ("SFT rows", "chat SFT rows"))
    formats = []
    for i, row in enumerate(rows):
        if "messages" in row:
            _check_messages(row["messages"], f"rows[{i}]['messages']")
            if row["messages"][-1]["role"] != "assistant":
                raise PairError(f"rows[{i}]['messages']: must end with an assistant message")
            formats.append("messages")
        else:
            formats.append(_prompt_completion_format(row, i))
    return _same_format(rows, formats)


def validate_kto_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Check unpaired KTO rows; return "standard" or "conversational"."""
    _check_rows(rows, "KTO", ("KTO rows",))
    formats = []
    for i, row in enumerate(rows):
        formats.append(_prompt_completion_format(row, i))
        if not isinstance(row["label"], bool):
            raise PairError(f"rows[{i}]['label']: must be true or false, got {row['label']!r}")
    return _same_format(rows, formats)


def validate_prompt_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Check prompts for online RL; return "standard" or "conversational"."""
    _check_rows(rows, "online RL", ("prompts",))
    formats = []
    for i, row in enumerate(rows):
        if "prompt" not in row:
            raise PairError(f"rows[{i}]['prompt']: missing")
        conversational = isinstance(row["prompt"], list)
        _check_text_or_messages(row["prompt"], f"rows[{i}]['prompt']", conversational)
        formats.append("conversational" if conversational else "standard")
    return _same_format(rows, formats)


def rows_to_dataset(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> Any:
    """A `datasets.Dataset` of the given columns only (rows already validated)."""
    from datasets import Dataset

    return Dataset.from_list([{k: row[k] for k in keys} for row in rows])
