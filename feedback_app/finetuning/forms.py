"""Launch forms for the loop page: they parse types; `params.check_params` owns the rules.

Defaults come from the `training` config dataclasses, so the page, the API and the CLI agree.
"""

from __future__ import annotations

from typing import Any

from django import forms

from feedback_app.preferences.models import DatasetSnapshot
from feedback_app.preferences.pairs import PairPolicy
from training.config import (
    DPO_LOSS_TYPES,
    DPOTrainConfig,
    EvalConfig,
    GenerateConfig,
    RewardTrainConfig,
)

from .models import Job, ModelVersion

_GEN, _RM, _DPO, _EVAL, _POLICY = (
    GenerateConfig(),
    RewardTrainConfig(),
    DPOTrainConfig(),
    EvalConfig(),
    PairPolicy(),
)


class _LaunchForm(forms.Form):
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


class GenerateForm(_LaunchForm):
    policy = _version_field("Policy")
    challenger = _version_field("Second policy (head to head)")
    prompt_limit = forms.IntegerField(required=False, min_value=1, label="At most N prompts")
    temperature = forms.FloatField(initial=_GEN.temperature)
    top_p = forms.FloatField(initial=_GEN.top_p)
    max_new_tokens = forms.IntegerField(initial=_GEN.max_new_tokens)
    seed = forms.IntegerField(initial=_GEN.seed)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for name in ("policy", "challenger"):
            self.fields[name].queryset = self._versions("policy")
        self.fields["challenger"].empty_label = "none"

    def params(self) -> dict[str, Any]:
        out = super().params()
        versions = [out.pop("policy", None)]
        if "challenger" in out:
            versions.append(out.pop("challenger"))
        out["model_versions"] = versions
        return out


class BuildDatasetForm(_LaunchForm):
    min_votes = forms.IntegerField(initial=_POLICY.min_votes)
    min_agreement = forms.FloatField(initial=_POLICY.min_agreement)
    drop_all_bad = forms.BooleanField(initial=_POLICY.drop_all_bad, required=False)
    drop_unsafe = forms.BooleanField(initial=_POLICY.drop_unsafe, required=False)
    test_fraction = forms.FloatField(initial=0.1)
    seed = forms.IntegerField(initial=0)


def _snapshot_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=DatasetSnapshot.objects.none(), required=False, empty_label="the newest"
    )


class _TrainForm(_LaunchForm):
    snapshot = _snapshot_field()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = DatasetSnapshot.objects.filter(project=self.project)
        for name in ("base", "policy"):
            if name in self.fields:
                self.fields[name].queryset = self._versions("policy")


class TrainRewardForm(_TrainForm):
    base = _version_field("Start from policy")
    learning_rate = forms.FloatField(initial=_RM.learning_rate)
    epochs = forms.FloatField(initial=_RM.epochs)
    batch_size = forms.IntegerField(initial=_RM.batch_size)
    max_length = forms.IntegerField(initial=_RM.max_length)


class TrainDPOForm(_TrainForm):
    policy = _version_field("Policy to improve")
    beta = forms.FloatField(initial=_DPO.beta)
    learning_rate = forms.FloatField(initial=_DPO.learning_rate)
    epochs = forms.FloatField(initial=_DPO.epochs)
    batch_size = forms.IntegerField(initial=_DPO.batch_size)
    max_length = forms.IntegerField(initial=_DPO.max_length)
    loss_type = forms.ChoiceField(choices=[(t, t) for t in DPO_LOSS_TYPES], initial=_DPO.loss_type)
    lora = forms.BooleanField(required=False, initial=_DPO.lora, label="LoRA adapters")


class EvaluateForm(_LaunchForm):
    policy = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=False, empty_label="the newest trained"
    )
    reward = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=False, empty_label="the newest"
    )
    prompt_limit = forms.IntegerField(initial=16, min_value=1)
    samples_per_prompt = forms.IntegerField(initial=_EVAL.samples_per_prompt)
    max_new_tokens = forms.IntegerField(initial=_EVAL.max_new_tokens)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["policy"].queryset = self._versions("policy").filter(parent__isnull=False)
        self.fields["reward"].queryset = self._versions("reward")


FORMS: dict[str, type[_LaunchForm]] = {
    Job.Kind.GENERATE: GenerateForm,
    Job.Kind.BUILD_DATASET: BuildDatasetForm,
    Job.Kind.TRAIN_REWARD: TrainRewardForm,
    Job.Kind.TRAIN_DPO: TrainDPOForm,
    Job.Kind.EVALUATE: EvaluateForm,
}
