"""Feedback from a deployed model's end users: check and store it, and turn it into pairs.

Two kinds: *thumbs* (up or down on one response) and *choice* (one of two responses picked).
A choice is a pair as it stands. Thumbs become pairs per prompt: every response rated up
against every response rated down for the same prompt (a response rated both ways, or only
one side rated, gives nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from feedback_app.annotation.importing import MAX_TEXT, check_record
from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core.models import ModelVersion, Project

from .models import DeploymentFeedback

Kind = DeploymentFeedback.Kind


def feedback_record(
    *,
    project: Project,
    kind: Any,
    source: Any,
    prompt: Any,
    response: Any = None,
    rating: Any = None,
    chosen: Any = None,
    rejected: Any = None,
    model_version: Any = None,
    end_user: Any = "",
    metadata: Any = None,
    user: AbstractBaseUser | None = None,
) -> DeploymentFeedback:
    """Check one piece of feedback (the prompt by the import rules) and store it."""
    if kind not in Kind.values:
        raise InvalidInput(Problem("kind", f"must be one of {list(Kind.values)}"))
    source = storable.check_text(source, "source", limit=200)
    problems: list[Problem] = []
    # The import's checker, so a prompt here follows exactly the rules of an imported one.
    record = check_record({"prompt": prompt}, 1, None, problems)
    if record is None:
        raise InvalidInput([Problem(p.field, p.message) for p in problems])
    fields: dict[str, Any] = {}
    if kind == Kind.THUMBS:
        if chosen is not None or rejected is not None:
            raise InvalidInput(Problem("chosen", "thumbs feedback has `response` and `rating`"))
        fields["response"] = storable.check_text(response, "response", limit=MAX_TEXT)
        if rating not in DeploymentFeedback.Rating.values:
            raise InvalidInput(Problem("rating", 'must be "up" or "down"'))
        fields["rating"] = rating
    else:
        if response is not None or rating is not None:
            raise InvalidInput(Problem("response", "choice feedback has `chosen` and `rejected`"))
        fields["chosen"] = storable.check_text(chosen, "chosen", limit=MAX_TEXT)
        fields["rejected"] = storable.check_text(rejected, "rejected", limit=MAX_TEXT)
        if fields["chosen"] == fields["rejected"]:
            raise InvalidInput(Problem("rejected", "must differ from `chosen`"))
    if model_version is not None:
        if (
            isinstance(model_version, bool)
            or not isinstance(model_version, int)
            or not storable.in_int64(model_version)
        ):
            raise InvalidInput(Problem("model_version", "must be a model version id"))
        fields["model_version"] = ModelVersion.objects.filter(
            project=project, pk=model_version
        ).first()
        if fields["model_version"] is None:
            raise InvalidInput(
                Problem("model_version", f"no model version {model_version} in this project")
            )
    if end_user is None:
        end_user = ""
    end_user = storable.check_text(end_user, "end_user", limit=200, blank=True)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InvalidInput(Problem("metadata", "must be a JSON object"))
    storable.check_json(metadata, "metadata")
    return DeploymentFeedback.objects.create(
        project=project,
        kind=kind,
        source=source,
        prompt_text=record.text,
        prompt_messages=record.messages,
        prompt_hash=record.content_hash,
        end_user=end_user,
        metadata=metadata,
        created_by=user,
        **fields,
    )


@dataclass(frozen=True)
class FeedbackRow:
    """What pairing needs of one stored piece of feedback (pure, no ORM)."""

    prompt_hash: str
    kind: str
    response: str = ""
    rating: str = ""
    chosen: str = ""
    rejected: str = ""


def pairs_from_feedback(rows: Iterable[FeedbackRow]) -> list[tuple[str, str, str]]:
    """(prompt hash, chosen, rejected) triples, deduplicated, in a stable order.

    >>> pairs_from_feedback([FeedbackRow("h", "thumbs", "good", "up"),
    ...                      FeedbackRow("h", "thumbs", "bad", "down")])
    [('h', 'good', 'bad')]
    """
    out: set[tuple[str, str, str]] = set()
    ups: dict[str, set[str]] = {}
    downs: dict[str, set[str]] = {}
    for r in rows:
        if r.kind == Kind.CHOICE:
            out.add((r.prompt_hash, r.chosen, r.rejected))
        elif r.rating == DeploymentFeedback.Rating.UP:
            ups.setdefault(r.prompt_hash, set()).add(r.response)
        else:
            downs.setdefault(r.prompt_hash, set()).add(r.response)
    for h, good in ups.items():
        bad = downs.get(h, set())
        out.update((h, g, b) for g in good - bad for b in bad - good)
    # A choice seen both ways is a contradiction, not data.
    return sorted(t for t in out if (t[0], t[2], t[1]) not in out)
