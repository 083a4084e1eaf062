"""Parse and check a JSONL file of prompts (pure, no ORM): every problem names line and field.

One object a line::

    {"prompt": "text" | [{"role": "user", "content": "..."}, ...],
     "candidates": ["text" | {"text": "...", "model": "..."}, ...],   # optional
     "metadata": {...},                                                # optional
     "gold": [[0], [2, 1], ...],                                       # optional
     "id": "your id"}                                                  # optional

"gold" makes the task a gold task: its expected order, groups of candidate indexes (0 is the
first candidate) best first, a group a tie; it needs the candidates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput, Problem

from .rankings import check_ranking

ROLES = ("system", "user", "assistant")
KEYS = {"prompt", "candidates", "metadata", "gold", "id"}
MAX_PROBLEMS = 20
MAX_TEXT = 100_000


@dataclass(frozen=True)
class CandidateRecord:
    text: str
    model: str = ""


@dataclass(frozen=True)
class PromptRecord:
    line: int
    text: str = ""
    messages: list[dict] | None = None
    candidates: list[CandidateRecord] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    external_id: str = ""
    gold: list[list[int]] | None = None  # groups of candidate indexes, best first

    @property
    def content_hash(self) -> str:
        return prompt_hash(self.text, self.messages)


def prompt_hash(text: str, messages: list[dict] | None) -> str:
    """Content hash of a prompt: the same text or chat always hashes the same."""
    content = {"messages": messages} if messages is not None else {"text": text}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _check_text(
    value: object,
    where: str,
    line: int,
    problems: list[Problem],
    *,
    limit: int = MAX_TEXT,
    blank: bool = False,
) -> str | None:
    message = storable.text_problem(value, limit=limit, blank=blank)
    if message is not None:
        problems.append(Problem(where, message, line))
        return None
    return value  # type: ignore[return-value]  # text_problem refused anything but str


def _check_messages(value: list, line: int, problems: list[Problem]) -> list[dict] | None:
    if not value:
        problems.append(Problem("prompt", "a chat needs at least one message", line))
        return None
    messages = []
    for i, msg in enumerate(value):
        where = f"prompt[{i}]"
        if not isinstance(msg, dict) or set(msg) - {"role", "content"}:
            problems.append(Problem(where, 'must be {"role": ..., "content": ...}', line))
            return None
        if msg.get("role") not in ROLES:
            problems.append(Problem(f"{where}.role", f"must be one of {list(ROLES)}", line))
            return None
        content = _check_text(msg.get("content"), f"{where}.content", line, problems)
        if content is None:
            return None
        messages.append({"role": msg["role"], "content": content})
    if messages[-1]["role"] != "user":
        problems.append(Problem("prompt", "a chat must end with a user message", line))
        return None
    return messages


def _check_candidates(
    value: object, line: int, k: int | None, problems: list[Problem]
) -> list[CandidateRecord]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem("candidates", "must be a list", line))
        return []
    if not value:  # an empty list made a prompt with no task, silently (issue 26)
        message = "is empty: give the candidates, or leave the key out to generate them"
        problems.append(Problem("candidates", message, line))
        return []
    if k is not None and len(value) != k:
        problems.append(
            Problem(
                "candidates", f"this project ranks {k} candidates a task, got {len(value)}", line
            )
        )
        return []
    out = []
    for i, cand in enumerate(value):
        where = f"candidates[{i}]"
        if isinstance(cand, dict):
            if set(cand) - {"text", "model"}:
                problems.append(Problem(where, 'must be text or {"text": ..., "model": ...}', line))
                return []
            model = _check_text(
                cand.get("model", ""), f"{where}.model", line, problems, limit=200, blank=True
            )
            if model is None:
                return []
            text = _check_text(cand.get("text"), f"{where}.text", line, problems)
        else:
            model = ""
            text = _check_text(cand, where, line, problems)
        if text is None:
            return []
        out.append(CandidateRecord(text=text, model=model))
    if len({c.text for c in out}) != len(out):
        problems.append(Problem("candidates", "two candidates have the same text", line))
        return []
    return out


def _check_gold(
    value: object, candidates: list[CandidateRecord], line: int, problems: list[Problem]
) -> list[list[int]] | None:
    """The expected order over the candidates' indexes (the one ranking validator's rules)."""
    if value is None:
        return None
    if not candidates:
        problems.append(Problem("gold", "a gold order needs the candidates it orders", line))
        return None
    try:
        return check_ranking(value, range(len(candidates)), field="gold", what="index")
    except InvalidInput as exc:
        problems.extend(Problem(p.field, p.message, line) for p in exc.problems)
        return None


def check_record(
    obj: object, line: int, k: int | None, problems: list[Problem]
) -> PromptRecord | None:
    """Check one decoded line; append what is wrong to `problems` and return None if anything is."""
    before = len(problems)
    if not isinstance(obj, dict):
        problems.append(Problem("line", "must be a JSON object", line))
        return None
    unknown = sorted(set(obj) - KEYS)
    if unknown:
        # An empty key still needs a name the user can find; an odd one is quoted (label).
        name = storable.label(unknown[0]) if unknown[0] else "line"
        problems.append(Problem(name, f"unknown field {name!r}; allowed: {sorted(KEYS)}", line))
        return None
    prompt = obj.get("prompt")
    text, messages = "", None
    if isinstance(prompt, list):
        messages = _check_messages(prompt, line, problems)
    elif isinstance(prompt, str):
        text = _check_text(prompt, "prompt", line, problems) or ""
    else:
        problems.append(Problem("prompt", "must be text or a list of chat messages", line))
    candidates = _check_candidates(obj.get("candidates"), line, k, problems)
    gold = None
    if candidates or not obj.get("candidates"):  # bad candidates were named already
        gold = _check_gold(obj.get("gold"), candidates, line, problems)
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        problems.append(Problem("metadata", "must be a JSON object", line))
    else:
        problems.extend(storable.json_problems(metadata, "metadata", line=line))
    ext = obj.get("id", "")
    if (
        isinstance(ext, bool)
        or not isinstance(ext, str | int)
        or (isinstance(ext, int) and not storable.in_int64(ext))
        or len(str(ext)) > 200
        or (isinstance(ext, str) and storable.character_problem(ext))
    ):
        problems.append(Problem("id", "must be text or a number (200 characters at most)", line))
    if len(problems) > before:
        return None
    return PromptRecord(
        line=line,
        text=text,
        messages=messages,
        candidates=candidates,
        metadata=metadata,
        external_id=str(ext),
        gold=gold,
    )


def check_records(objects: Iterable[tuple[int, object]], *, k: int | None) -> list[PromptRecord]:
    """Check (line number, object) pairs; raise with every problem found, or return all."""
    problems: list[Problem] = []
    records: list[PromptRecord] = []
    first_line: dict[str, int] = {}
    for line, obj in objects:
        record = check_record(obj, line, k, problems)
        if record is not None:
            seen = first_line.setdefault(record.content_hash, line)
            if seen != line:
                problems.append(Problem("prompt", f"same prompt as line {seen}", line))
            records.append(record)
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise InvalidInput(problems)
    if not records:
        raise InvalidInput(Problem("file", "no prompts found"))
    return records


def parse_jsonl(data: bytes | str, *, k: int | None) -> list[PromptRecord]:
    """Decode a JSONL file (blank lines allowed) and check every line.

    Lines end at "\n" (or "\r\n") only, as JSON Lines says: `str.splitlines` would also split
    at U+2028, U+2029 and U+0085, which JSON allows raw inside strings.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(Problem("file", f"not UTF-8 text ({exc.reason})")) from exc
    objects: list[tuple[int, object]] = []
    problems: list[Problem] = []
    for number, raw in enumerate(data.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            objects.append((number, storable.loads(raw, field="line", line=number)))
        except InvalidInput as exc:
            problems.extend(exc.problems)
            if len(problems) >= MAX_PROBLEMS:
                break
    if problems:
        raise InvalidInput(problems)
    return check_records(objects, k=k)
