"""Form parsing for the pages: turn POST data into what services take."""

from __future__ import annotations

from collections.abc import Sequence

from django import forms
from django.http import QueryDict

from feedback_app.common.errors import InvalidInput, Problem

from .rankings import groups_from_ranks


def ranks_from_post(data: QueryDict, candidate_ids: Sequence[int]) -> list[list[int]]:
    """Read one ``rank-<id>`` number a candidate (equal numbers tie) into ranking groups."""
    ranks: dict[int, int] = {}
    for cid in candidate_ids:
        name = f"rank-{cid}"
        raw = data.get(name, "").strip()
        if not raw:
            raise InvalidInput(Problem(name, "give every candidate a rank"))
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInput(Problem(name, f"{raw!r} is not a rank number")) from None
        if not 1 <= value <= len(candidate_ids):
            raise InvalidInput(Problem(name, f"rank must be between 1 and {len(candidate_ids)}"))
        ranks[cid] = value
    return groups_from_ranks(ranks)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL, one prompt a line.")
