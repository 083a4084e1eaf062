"""Form parsing for the pages: turn POST data into what services take."""

from __future__ import annotations

import re

from django import forms
from django.http import QueryDict

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.common.storable import is_id, label

from .rankings import groups_from_ranks

_RANK_FIELD = re.compile(r"rank-(\d+)")


def ranks_from_post(data: QueryDict) -> list[list[int]]:
    """Read the ``rank-<candidate id>`` numbers (equal numbers tie) into ranking groups.

    Whether they name exactly the task's candidates is checked by `ranking_submit`, against the
    lease, so the page needs no read of its own before submitting.
    """
    fields = []
    for name in data:
        if m := _RANK_FIELD.fullmatch(name):
            if not is_id(m[1]):
                # 5 000 digits (or "٣"): not an id int() should read, nor any candidate.
                raise InvalidInput(Problem(label(name), "not a candidate of this task"))
            fields.append((name, int(m[1])))
    if not fields:
        raise InvalidInput(Problem("ranking", "give every candidate a rank"))
    ranks: dict[int, int] = {}
    for name, cid in fields:
        raw = data.get(name, "").strip()
        if not raw:
            raise InvalidInput(Problem(name, "give every candidate a rank"))
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInput(Problem(name, f"{raw!r} is not a rank number")) from None
        if not 1 <= value <= len(fields):
            raise InvalidInput(Problem(name, f"rank must be between 1 and {len(fields)}"))
        ranks[cid] = value
    return groups_from_ranks(ranks)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL, one prompt a line.")
