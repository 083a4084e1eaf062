"""Snapshots, jobs and model versions (views/loop.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from feedback_app.core.models import DatasetSnapshot, Job, ModelVersion
from feedback_app.finetuning.kinds import KINDS
from feedback_app.finetuning.params import DEVICE_DEFAULTS

from .common import _id_field


class SnapshotSerializer(serializers.ModelSerializer):
    files = serializers.SerializerMethodField()

    class Meta:
        model = DatasetSnapshot
        fields = [
            "id",
            "project",
            "content_hash",
            "kind",
            "format",
            "policy",
            "test_fraction",
            "seed",
            "counts",
            "rankings_through",
            "job",
            "created_at",
            "files",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"train": {"type": "string"}, "test": {"type": "string"}},
        }
    )
    def get_files(self, obj: DatasetSnapshot) -> dict[str, str]:
        return {split: f"/api/v1/snapshots/{obj.pk}/files/{split}/" for split in ("train", "test")}


class SnapshotCreateSerializer(serializers.Serializer):
    """The build_dataset job's parameters (PairPolicy fields, test_fraction, seed)."""

    min_votes = serializers.JSONField(required=False)
    min_agreement = serializers.JSONField(required=False)
    drop_all_bad = serializers.JSONField(required=False)
    drop_unsafe = serializers.JSONField(required=False)
    include_feedback = serializers.JSONField(required=False)
    with_margin = serializers.JSONField(required=False)
    flagged_weight = serializers.JSONField(
        required=False,
        help_text="0..1: what a vote of an annotator the quality report flags counts (1: as "
        "anyone's, 0: dropped); whom it applied to is recorded in the snapshot's policy.",
    )
    test_fraction = serializers.JSONField(required=False)
    seed = serializers.JSONField(required=False)
    kind = serializers.JSONField(required=False, help_text="pairs (default), sft or kto")
    sft_from_rankings = serializers.JSONField(required=False)
    sft_from_demonstrations = serializers.JSONField(required=False)
    kto_from_feedback = serializers.JSONField(required=False)
    kto_from_rankings = serializers.JSONField(required=False)
    include_edits = serializers.JSONField(required=False)
    recency_half_life = serializers.JSONField(
        required=False,
        help_text="Pairs only; rounds (> 0) or null (the default: every round weighs the same). "
        "A round that many rounds older than the newest weighs half as much; the weights and "
        "the train rows each round got are recorded in the snapshot.",
    )


class JobSerializer(serializers.ModelSerializer):
    metrics = serializers.JSONField(source="metric_history", help_text="One entry a logged step.")

    class Meta:
        model = Job
        fields = [
            "id",
            "project",
            "kind",
            "params",
            "status",
            "progress",
            "progress_note",
            "metrics",
            "log_tail",
            "error",
            "outputs",
            "cancel_requested",
            "retry_of",
            "queue",
            "sent_at",
            "send_count",
            "heartbeat_at",
            "started_at",
            "finished_at",
            "created_at",
        ]
        read_only_fields = fields


def _device_defaults_text() -> str:
    """The training defaults per device, as the schema describes `params`."""
    per_device = "; ".join(
        f"{device}: " + ", ".join(f"{k}={v:g}" for k, v in values.items())
        for device, values in DEVICE_DEFAULTS.items()
    )
    return (
        "The kind's parameters (docs/api.md); left out, a parameter takes its default. Training "
        "stages take these defaults by the device the workers train on (settings "
        f"TRAINING_DEVICE), each where its config has the field: {per_device}."
    )


class JobCreateSerializer(serializers.Serializer):
    project = _id_field()
    kind = serializers.ChoiceField(choices=Job.Kind.choices)
    params = extend_schema_field(OpenApiTypes.OBJECT)(
        serializers.JSONField(required=False, default=dict, help_text=_device_defaults_text())
    )

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        # The kinds as the registry has them now: a stage added to the stage table shows.
        fields["kind"].choices = [(name, kind.label) for name, kind in KINDS.items()]
        return fields


class PromoteSerializer(serializers.Serializer):
    confirm = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Required (true) to promote a version that lost to its parent or whose win "
        "rate's 95 % interval includes 0.5; a 400 naming `confirm` says why otherwise.",
    )


class ModelVersionSerializer(serializers.ModelSerializer):
    won_against_parent = serializers.BooleanField(allow_null=True, read_only=True)
    label = serializers.CharField(
        read_only=True, help_text='How pages name it: the name and its stage ("policy-12 · DPO").'
    )
    # Blank for a version registered without one (a base or reward model added by hand).
    stage = serializers.ChoiceField(
        choices=ModelVersion.Stage.choices,
        allow_blank=True,
        read_only=True,
        help_text="The stage that made it (base, reward, sft, dpo, kto, grpo, rloo); may be empty.",
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "project",
            "kind",
            "stage",
            "name",
            "label",
            "weights",
            "parent",
            "job",
            "snapshot",
            "metrics",
            "is_active",
            "won_against_parent",
            "created_at",
        ]
        read_only_fields = fields
