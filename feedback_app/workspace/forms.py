"""The forms of a project's pages: its settings, adding, inviting and members' roles."""

from __future__ import annotations

from django import forms

from feedback_app.core.models import Project

from .projects import GENERATION_FIELDS, SETTINGS


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

    judge_min_agreement = forms.FloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="An AI judge's votes count while the lower end of its agreement with people "
        "reaches this (blank: 0.7).",
    )

    def clean_judge_min_agreement(self) -> float:
        value = self.cleaned_data.get("judge_min_agreement")
        return 0.7 if value is None else value

    # The generation defaults the page edits (a stop list is the API's).
    GENERATION = tuple(name for name in GENERATION_FIELDS if name != "stop")

    class Meta:
        model = Project
        # The settings (projects.SETTINGS) but `generation`, which the fields above edit.
        fields = [name for name in SETTINGS if name != "generation"]
        labels = {
            "candidates_per_task": "K (candidates a task)",
            "annotations_per_task": "Rankings wanted per task",
            "lease_seconds": "Lease length (seconds)",
            "annotations_max": "Most rankings per task while votes disagree (0: fixed)",
            "active_selection": "Active selection of each round's prompts",
            "judge_min_agreement": "Least agreement of an AI judge for its votes to count",
            "judge_triage": "Triage: people first get the tasks AI judges are unsure of",
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
