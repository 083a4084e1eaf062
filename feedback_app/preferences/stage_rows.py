"""Rankings and feedback -> the unpaired dataset kinds: SFT rows and KTO rows. Pure: no ORM.

Vocabulary: a candidate is *unanimously top* in a task when every ranking the policy keeps put
it in its first group (at least `min_votes` of them); it is what annotators agree is a good
answer, so SFT may learn it and KTO may call it desirable. A task that most of its rankings
flagged *all bad* gives undesirable KTO rows, one a candidate. Thumbs up and down from a
deployment are KTO rows as they stand (a response rated both ways is dropped: a contradiction).
Which sources go in is the `StagePolicy`; the snapshot records it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

from .dataset import PromptView
from .pairs import PairPolicy, RankingRow, select_rankings

SFT, KTO = "sft", "kto"


@dataclass(frozen=True)
class StagePolicy:
    """Which sources an SFT or KTO snapshot takes.

    sft_from_demonstrations: answers annotators wrote or edited (`annotation.demonstrations`);
    sft_from_rankings: add unanimously top-ranked candidates;
    kto_from_feedback: deployment thumbs up/down; kto_from_rankings: unanimous top as
    desirable, tasks flagged all-bad as undesirable.
    """

    sft_from_demonstrations: bool = True
    sft_from_rankings: bool = False
    kto_from_feedback: bool = True
    kto_from_rankings: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise ValueError(f"{f.name}: must be true or false")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StageRow:
    """One SFT or KTO row before formatting: its prompt, a completion, and a label (KTO)."""

    prompt: PromptView
    completion: str
    label: bool | None = None
    source: str = ""  # where it came from: demonstrations, rankings, feedback
    voters: str = ""  # whose votes (pairs.pair_source), in a project with AI judges; else ""


def unanimous_top(rankings: Sequence[RankingRow], policy: PairPolicy) -> list[int]:
    """Candidates every kept ranking of one task put in its first group, sorted.

    >>> rows = [RankingRow(1, 10, [[4], [5, 6]]), RankingRow(1, 11, [[4, 5], [6]])]
    >>> unanimous_top(rows, PairPolicy()), unanimous_top(rows, PairPolicy(min_votes=3))
    ([4], [])
    """
    kept = select_rankings(rankings, policy)
    if not kept or len(kept) < policy.min_votes:
        return []
    top = set(kept[0].groups[0]) if kept[0].groups else set()
    for r in kept[1:]:
        top &= set(r.groups[0]) if r.groups else set()
    return sorted(top)


def all_bad_task(rankings: Sequence[RankingRow]) -> bool:
    """Most rankings of the task said every candidate is bad.

    >>> all_bad_task([RankingRow(1, 1, [[3]], all_bad=True), RankingRow(1, 2, [[3]])])
    False
    """
    return sum(r.all_bad for r in rankings) * 2 > len(rankings) if rankings else False


def kto_from_thumbs(thumbs: Iterable[tuple[str, str, bool]]) -> list[tuple[str, str, bool]]:
    """(prompt hash, response, up) rows, deduplicated, contradictions dropped, sorted.

    >>> kto_from_thumbs([("h", "a", True), ("h", "a", True), ("h", "b", True), ("h", "b", False)])
    [('h', 'a', True)]
    """
    seen = set(thumbs)
    return sorted(t for t in seen if (t[0], t[1], not t[2]) not in seen)


def is_chat(rows: Iterable[StageRow]) -> bool:
    """The chat rule of `rows.py` for these rows: conversational when any prompt is a chat."""
    return any(r.prompt.messages is not None for r in rows)


def _messages(prompt: PromptView) -> list[dict]:
    if prompt.messages is not None:
        return prompt.messages
    return [{"role": "user", "content": prompt.text}]


def trl_stage_row(kind: str, row: StageRow, *, chat: bool) -> dict:
    """One row TRL's SFTTrainer (kind "sft") or KTOTrainer ("kto") reads unchanged.

    SFT: {"prompt", "completion"} strings, or {"messages"} (the chat plus the answer) in a
    conversational dataset. KTO: {"prompt", "completion", "label"}, message lists when chat.
    Plus "source" (people, judge, both) when the row says whose votes it rests on.
    """
    answer = [{"role": "assistant", "content": row.completion}]
    if kind == SFT:
        if chat:
            out: dict = {"messages": [*_messages(row.prompt), *answer]}
        else:
            out = {"prompt": row.prompt.text, "completion": row.completion}
    elif chat:
        out = {"prompt": _messages(row.prompt), "completion": answer, "label": bool(row.label)}
    else:
        out = {"prompt": row.prompt.text, "completion": row.completion, "label": bool(row.label)}
    if row.voters:  # whose votes (a project with AI judges): a column TRL's trainers ignore
        out["source"] = row.voters
    return out
