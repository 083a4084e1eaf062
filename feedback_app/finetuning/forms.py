"""Launch forms for the loop page: they parse types; each kind's checker (`params.py`) owns the
rules, and the registry (`kinds.py`) says which form launches which kind.

Defaults and bounds come from the `training` config dataclasses and `PairPolicy` (`ranges`),
so the page, the API and the CLI agree. The training stages' forms are built from the stage
table (`stage_form`, training/stages.py); the sizes that depend on the device are the stage's
`defaults`, read when a form is made (the checker fills in the same values). An
open end of a range (a learning rate above 0) has no HTML equivalent: the checker refuses it,
and the page shows that on the field.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from django import forms

from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput
from feedback_app.core.models import DatasetSnapshot, ModelVersion
from feedback_app.preferences.dataset import DEFAULT_TEST_FRACTION
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.stage_rows import StagePolicy
from training.config import EvalConfig, GenerateConfig, Range, ranges
from training.stages import Stage, stage_list

from .params import (
    DEFAULT_REVIEW_MARGIN,
    EVAL_PROMPT_LIMIT,
    EVAL_PROMPTS,
    PROMPT_LIMIT,
    RECENCY_HALF_LIFE,
    REVIEW_MARGIN,
    SPLIT_SEED,
    STAGE_FLAGS,
    TEST_FRACTION,
    stage_rows,
    training_device,
)

_GEN, _EVAL, _POLICY, _STAGE = GenerateConfig(), EvalConfig(), PairPolicy(), StagePolicy()


def _number(allowed: Range, **kwargs: Any) -> forms.Field:
    """A form field for a bounded number: the range's closed ends become min and max."""
    field = forms.IntegerField if allowed.integer else forms.FloatField
    return field(
        min_value=None if allowed.low_open else allowed.low,
        max_value=None if allowed.high_open else allowed.high,
        **kwargs,
    )


def _config_number(config: object, name: str, **kwargs: Any) -> forms.Field:
    """The field `name` of a config (or policy): its range, and its default as the initial."""
    return _number(ranges(type(config))[name], initial=getattr(config, name), **kwargs)


class LaunchForm(forms.Form):
    """Base: blank optional fields are left out, so the checker fills in its default."""

    def __init__(self, *args: Any, project, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.project = project

    def _versions(self, kind: str):
        return ModelVersion.objects.filter(project=self.project, kind=kind).order_by("-id")

    def params(self) -> dict[str, Any]:
        out = {}
        for name, value in self.cleaned_data.items():
            if value is None or value == "":
                continue
            out[name] = value.pk if hasattr(value, "pk") else value
        return out


def _version_field(label: str, required: bool = False) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=required, label=label,
        empty_label="the active one",
    )  # fmt: skip


class GenerateForm(LaunchForm):
    policy = _version_field("Policy")
    challenger = _version_field("Second policy (head to head)")
    prompt_limit = _number(PROMPT_LIMIT, required=False, label="At most N prompts")
    round_size = _number(
        PROMPT_LIMIT,
        required=False,
        label="Round size",
        help_text="Ask about this many prompts not asked before, chosen by the project's rule "
        "(active selection: where the reward model is least sure). Empty: every prompt.",
    )
    pool_size = _number(
        PROMPT_LIMIT,
        required=False,
        label="Selection pool",
        help_text="Active selection scores at most this many unasked prompts. Empty: all.",
    )
    temperature = _config_number(_GEN, "temperature")
    top_p = _config_number(_GEN, "top_p")
    max_new_tokens = _config_number(_GEN, "max_new_tokens")
    seed = _config_number(_GEN, "seed")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for name in ("policy", "challenger"):
            self.fields[name].queryset = self._versions("policy")
        self.fields["challenger"].empty_label = "none"
        # The form starts from the project's generation defaults (its Settings page).
        for name, value in (self.project.generation or {}).items():
            if name in self.fields:
                self.fields[name].initial = value

    def params(self) -> dict[str, Any]:
        out = super().params()
        versions = [out.pop("policy", None)]
        if "challenger" in out:
            versions.append(out.pop("challenger"))
        out["model_versions"] = versions
        return out


class BuildDatasetForm(LaunchForm):
    min_votes = _config_number(_POLICY, "min_votes")
    min_agreement = _config_number(_POLICY, "min_agreement")
    drop_all_bad = forms.BooleanField(initial=_POLICY.drop_all_bad, required=False)
    drop_unsafe = forms.BooleanField(initial=_POLICY.drop_unsafe, required=False)
    flagged_weight = _config_number(
        _POLICY,
        "flagged_weight",
        required=False,
        help_text="What a vote of an annotator flagged on the quality page counts: 1 as anyone's, "
        "0 dropped.",
    )
    test_fraction = _number(TEST_FRACTION, initial=DEFAULT_TEST_FRACTION)
    seed = _number(SPLIT_SEED, initial=0)
    kind = forms.ChoiceField(
        choices=DatasetSnapshot.Kind.choices, initial="pairs", required=False, label="Rows"
    )
    with_margin = forms.BooleanField(
        required=False, label="Pairs: vote strength as the reward model's margin"
    )
    recency_half_life = _number(
        RECENCY_HALF_LIFE,
        required=False,
        label="Pairs: recency half-life (rounds)",
        help_text="Empty: every round's pairs weigh the same. A round this many rounds older "
        "than the newest weighs half as much (its train rows repeated less).",
    )
    include_edits = forms.BooleanField(
        required=False, label="Pairs: edited candidates (the edit over the original)"
    )
    sft_from_demonstrations = forms.BooleanField(
        required=False, initial=_STAGE.sft_from_demonstrations, label="SFT: demonstrations"
    )
    sft_from_rankings = forms.BooleanField(
        required=False, label="SFT: add unanimously top-ranked candidates"
    )
    kto_from_feedback = forms.BooleanField(
        required=False, initial=_STAGE.kto_from_feedback, label="KTO: deployment thumbs"
    )
    kto_from_rankings = forms.BooleanField(
        required=False, label="KTO: top groups desirable, all-bad tasks undesirable"
    )

    def params(self) -> dict[str, Any]:
        """Pairs take no stage flags (an unticked box is still a value on an HTML form)."""
        out = super().params()
        if out.get("kind", "pairs") == "pairs":
            out.pop("kind", None)
            for name in STAGE_FLAGS:
                out.pop(name, None)
        return out


def _snapshot_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=DatasetSnapshot.objects.none(), required=False, empty_label="the newest"
    )


class _TrainForm(LaunchForm):
    """Base of the stage forms `stage_form` builds: the snapshot of the stage's rows, the
    versions it starts from, and the device's defaults as the initial values."""

    snapshot = _snapshot_field()
    stage: Stage  # set by stage_form
    device_note = ""  # which device the defaults are for, shown above the fields

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        device = training_device()
        chosen = self.stage.defaults(device)
        for name, value in chosen.items():
            if name in self.fields:
                self.fields[name].initial = value
        shown = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in chosen.items())
        self.device_note = f"Defaults for {device.upper()}: {shown}."
        snapshots = DatasetSnapshot.objects.filter(project=self.project)
        if stage_rows(self.stage) is not None:
            snapshots = snapshots.filter(kind=stage_rows(self.stage))
        self.fields["snapshot"].queryset = snapshots
        self.fields[self.stage.start].queryset = self._versions("policy")
        for name in ("reward_model", "judge"):
            if name in self.fields:
                self.fields[name].queryset = self._versions("reward")


_START_LABELS = {"base": "Start from policy", "policy": "Policy to improve"}


def _config_field(stage: Stage, name: str) -> forms.Field:
    """The form field of one of the stage's config fields: a choice, a box, or a number."""
    default = getattr(stage.config(), name)
    options = dict(stage.choices).get(name)
    if options is not None:
        return forms.ChoiceField(choices=[(t, t) for t in options], initial=default)
    if isinstance(default, bool):
        return forms.BooleanField(required=False, initial=default, label=BOOL_LABELS.get(name))
    return _config_number(stage.config(), name)


BOOL_LABELS = {
    "lora": "LoRA adapters",
    "divergence_stop": "Stop when the detector sees divergence",
    "bootstrap": "Resample the pairs per member",
}


@functools.cache
def stage_form(stage: Stage) -> type[LaunchForm]:
    """The launch form of a training stage, built from its row (training/stages.py)."""
    fields: dict[str, Any] = {
        "stage": stage,
        stage.start: _version_field(_START_LABELS[stage.start]),
    }
    if stage.evaluates:
        fields["eval_prompts"] = _number(
            EVAL_PROMPTS, initial=EVAL_PROMPT_LIMIT, required=False,
            label="Evaluate on N prompts (0: no evaluation)",
        )  # fmt: skip
    if stage.reward_model:
        fields["reward_model"] = _version_field("Reward model (the reward function)")
        # Never the reward model above nor one on its pairs (finetuning/judges.py).
        fields["judge"] = _version_field("Independent judge (evaluation, divergence detector)")
        fields["judge"].empty_label = "one that shares none of its pairs (held-out split)"
    if stage.makes == ModelVersion.Kind.REWARD:
        # The held-out split: a judge sharing no pairs with the reward models trained on the
        # training split (finetuning/judges.py), for the runs optimised against them.
        fields["data_split"] = forms.ChoiceField(
            choices=[("train", "training split"), ("test", "held-out split (a judge)")],
            initial="train", required=False, label="Learn from",
        )  # fmt: skip
    fields.update({name: _config_field(stage, name) for name in stage.fields})
    name = f"Train{stage.name.upper()}Form"
    return type(name, (_TrainForm,), {"__module__": __name__, "__qualname__": name, **fields})


class EvaluateForm(LaunchForm):
    policy = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=False, empty_label="the newest trained"
    )
    reward = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=False, empty_label="the newest"
    )
    prompt_limit = _number(PROMPT_LIMIT, initial=EVAL_PROMPT_LIMIT)
    samples_per_prompt = _config_number(_EVAL, "samples_per_prompt")
    max_new_tokens = _config_number(_EVAL, "max_new_tokens")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["policy"].queryset = self._versions("policy").filter(parent__isnull=False)
        self.fields["reward"].queryset = self._versions("reward")


class ReviewScoresForm(LaunchForm):
    """Score the review queue: pairs the reward model confidently disagrees with people about."""

    reward = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=False, empty_label="the active one"
    )
    margin = _number(REVIEW_MARGIN, initial=DEFAULT_REVIEW_MARGIN, required=False)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["reward"].queryset = self._versions("reward")


class AutopilotForm(forms.Form):
    """The autopilot's settings on the loop page. It parses types only: the rules (bounds, the
    step parameters) are `autopilot.check_settings`', whose refusals come back on the fields."""

    enabled = forms.BooleanField(required=False, label="On")
    trigger = forms.ChoiceField(choices=[("share", "Share of the open round's tasks done"),
                                         ("rankings", "Rankings in the open round")])  # fmt: skip
    trigger_share = forms.FloatField(label="Share of tasks done (0..1]")
    trigger_rankings = forms.IntegerField(label="Rankings")
    stage = forms.ChoiceField(choices=(), label="Train the policy with")
    min_win_rate_low = forms.FloatField(label="Gate: win rate, lower end of its 95 % interval ≥")
    max_kl = forms.FloatField(label="Gate: KL to the parent ≤")
    min_reward_accuracy = forms.FloatField(label="Gate: reward model held-out accuracy ≥")
    head_to_head_share = forms.FloatField(label="Next round: share of K from the parent [0..1)")
    max_failed_gates = forms.IntegerField(
        label="Pause after this many failed gates in a row (0: never)"
    )
    step_params = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Step parameters (JSON: snapshot, reward, policy, evaluate, generate)",
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # The stages the autopilot may train with, read from the table when the form is made.
        self.fields["stage"].choices = [(s.name, s.label) for s in stage_list() if s.autopilot]

    def clean_step_params(self) -> Any:
        raw = self.cleaned_data["step_params"].strip() or "{}"
        try:  # the one decoder that bounds nesting and never raises RecursionError
            return storable.loads(raw, field="step_params")
        except InvalidInput as exc:
            raise forms.ValidationError(exc.problems[0].message) from exc

    @classmethod
    def initial_from(cls, settings: dict[str, Any]) -> dict[str, Any]:
        return {**settings, "step_params": json.dumps(settings["step_params"], indent=1)}
