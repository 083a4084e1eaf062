"""Form parsing for the pages: turn POST data into what services take."""

from __future__ import annotations

import re

from django import forms
from django.http import QueryDict

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.common.storable import is_id, label
from feedback_app.core.models import Project

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


# --- project settings and members (project_pages.py) --------------------------------------------


class ProjectForm(forms.ModelForm):
    """A project's settings; the rules that need the database are the services' (projects.py),
    whose problems the page puts on the field they name."""

    temperature = forms.FloatField(required=False, help_text="Sampling temperature (0: greedy).")
    top_p = forms.FloatField(required=False)
    max_new_tokens = forms.IntegerField(required=False)
    seed = forms.IntegerField(required=False)

    annotations_max = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=50,
        initial=0,
        help_text="Adaptive overlap: a task whose votes' top choices differ asks for another "
        "ranking, up to this many. 0 or at most the rankings wanted: fixed overlap.",
    )

    GENERATION = ("temperature", "top_p", "max_new_tokens", "seed")

    class Meta:
        model = Project
        fields = [
            "name",
            "guidelines",
            "candidates_per_task",
            "annotations_per_task",
            "rationale",
            "demonstrations",
            "gold_rate",
            "lease_seconds",
            "base_model",
            "annotations_max",
            "active_selection",
        ]
        labels = {
            "candidates_per_task": "K (candidates a task)",
            "annotations_per_task": "Rankings wanted per task",
            "lease_seconds": "Lease length (seconds)",
            "annotations_max": "Most rankings per task while votes disagree (0: fixed)",
            "active_selection": "Active selection of each round's prompts",
        }
        widgets = {"guidelines": forms.Textarea(attrs={"rows": 10, "data-preview-source": ""})}

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        generation = self.instance.generation or {}
        for name in self.GENERATION:
            self.fields[name].initial = generation.get(name)

    def _post_clean(self) -> None:
        """No model validation here: the services validate (uniqueness, K, base model)."""

    def settings_data(self) -> dict:
        """What the project services take: the settings, generation defaults as one object."""
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["annotations_max"] = data["annotations_max"] or 0  # left empty: fixed overlap
        generation = {
            k: v for k, v in (self.instance.generation or {}).items() if k not in self.GENERATION
        }
        generation.update(
            {n: self.cleaned_data[n] for n in self.GENERATION if self.cleaned_data[n] is not None}
        )
        data["generation"] = generation
        return data


class MemberAddForm(forms.Form):
    user = forms.CharField(max_length=254, label="Username or e-mail")
    role = forms.ChoiceField(choices=[("annotator", "Annotator"), ("admin", "Admin")])


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, label="E-mail")
    role = forms.ChoiceField(choices=[("annotator", "Annotator"), ("admin", "Admin")])


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[("annotator", "Annotator"), ("admin", "Admin")])
