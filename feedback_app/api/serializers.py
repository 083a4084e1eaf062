"""Shapes of what the API reads and writes.

Input serializers only check the shape DRF must know (types for the schema, required keys);
the rules themselves (a ranking covers every candidate once, a chat ends with a user message,
job parameters) stay in the services, which name the field they reject.
"""

from __future__ import annotations

from string import ascii_uppercase
from typing import Any

from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from feedback_app.annotation.models import Assignment, Demonstration, Ranking
from feedback_app.annotation.projects import check_candidates_per_task
from feedback_app.annotation.rankings import FLAGS
from feedback_app.annotation.selectors import Progress, candidates_in_display_order
from feedback_app.common import storable
from feedback_app.common.errors import ServiceError
from feedback_app.common.instants import parse_instant
from feedback_app.core.models import MAX_GUIDELINES, DatasetSnapshot, Job, ModelVersion, Project
from feedback_app.finetuning.kinds import KINDS
from feedback_app.finetuning.params import DEVICE_DEFAULTS
from feedback_app.preferences.models import DeploymentFeedback
from feedback_app.preferences.pairs import PairPolicy
from training.config import ranges

_MIN_VOTES = ranges(PairPolicy)["min_votes"]


def _id_field(**kwargs: Any) -> serializers.IntegerField:
    """An id in a body or query string: bounded, so no lookup overflows a 64-bit column."""
    return serializers.IntegerField(min_value=1, max_value=storable.INT64_MAX, **kwargs)


class InstantField(serializers.DateTimeField):
    """A date and time read by common/instants.py, the parser every date filter uses."""

    def to_internal_value(self, value: Any):
        try:
            return parse_instant(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


# --- errors ----------------------------------------------------------------------------------


class ProblemSerializer(serializers.Serializer):
    field = serializers.CharField(help_text='Where: a body field ("ranking[1]"), "url", ...')
    message = serializers.CharField()
    line = serializers.IntegerField(allow_null=True, help_text="Line or item number, if any.")


class ErrorSerializer(serializers.Serializer):
    errors = ProblemSerializer(many=True)


# --- projects --------------------------------------------------------------------------------


class StrictCharField(serializers.CharField):
    """Text only: DRF's CharField turns a number into its digits (`1e400` into "inf")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _storable_text(value: str, *, limit: int, blank: bool = False) -> str:
    message = storable.text_problem(value, limit=limit, blank=blank)
    if message is not None:
        raise serializers.ValidationError(message)
    return value


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "temperature": {"type": "number"},
            "top_p": {"type": "number"},
            "max_new_tokens": {"type": "integer"},
            "seed": {"type": "integer"},
            "stop": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": False,
    }
)
class GenerationField(serializers.JSONField):
    """Sampling defaults for generate jobs (checked by the service, by the job's own rules)."""


class ProjectSerializer(serializers.ModelSerializer):
    generation = GenerationField(required=False)

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "guidelines",
            "candidates_per_task",
            "annotations_per_task",
            "rationale",
            "demonstrations",
            "gold_rate",
            "lease_seconds",
            "base_model",
            "generation",
            "archived",
            "annotations_max",
            "active_selection",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "archived", "created_at", "updated_at"]
        extra_kwargs = {
            "guidelines": {"max_length": MAX_GUIDELINES},  # shown in the schema
            "base_model": {
                "help_text": "Hugging Face hub id or local path; its config and tokenizer must "
                "load (checked before saving)."
            },
        }

    def validate_name(self, value: str) -> str:
        return _storable_text(value, limit=200)

    def validate_guidelines(self, value: str) -> str:
        return _storable_text(value, limit=MAX_GUIDELINES, blank=True)

    def validate_base_model(self, value: str) -> str:
        return _storable_text(value, limit=500, blank=True)

    def validate_candidates_per_task(self, value: int) -> int:
        try:
            return check_candidates_per_task(self.instance, value)
        except ServiceError as exc:
            raise serializers.ValidationError(exc.problems[0].message) from exc


# --- prompts ---------------------------------------------------------------------------------

_PROMPT_SCHEMA = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                    "content": {"type": "string"},
                },
                "required": ["role", "content"],
            },
        },
    ]
}


class PromptRecordSerializer(serializers.Serializer):
    """One prompt to import: the same object as one line of the import page's JSONL file."""

    prompt = extend_schema_field(_PROMPT_SCHEMA)(serializers.JSONField())
    candidates = extend_schema_field(
        {
            "type": "array",
            "items": {
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "properties": {"text": {"type": "string"}, "model": {"type": "string"}},
                        "required": ["text"],
                    },
                ]
            },
        }
    )(serializers.JSONField(required=False))
    metadata = serializers.DictField(required=False)
    gold = extend_schema_field(
        {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}
    )(
        serializers.JSONField(
            required=False,
            help_text="Makes the task a gold task: its expected order, groups of candidate "
            "indexes (0 first) best first, a group a tie.",
        )
    )
    id = extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})(
        serializers.JSONField(required=False)
    )


class PromptUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A JSONL file, one prompt object a line.")


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Prompts added.")
    existing = serializers.IntegerField(help_text="Prompts already in the project (left alone).")
    tasks = serializers.IntegerField(help_text="Tasks created (prompts that had candidates).")


# --- annotation ------------------------------------------------------------------------------


class PromptContentSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    messages = serializers.ListField(child=serializers.DictField(), allow_null=True)


class CandidateShownSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField(help_text="A, B, C ... in display order.")
    text = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    remaining = serializers.IntegerField(help_text="An upper bound (see docs/architecture.md).")


class NextTaskSerializer(serializers.Serializer):
    task = serializers.IntegerField()
    project = serializers.IntegerField()
    round = serializers.IntegerField()
    prompt = PromptContentSerializer()
    candidates = CandidateShownSerializer(many=True, help_text="In this annotator's order.")
    lease_expires_at = serializers.DateTimeField()
    progress = ProgressSerializer()

    @staticmethod
    def payload(assignment: Assignment, progress: Progress) -> dict[str, Any]:
        task = assignment.task
        candidates = candidates_in_display_order(assignment)
        return {
            "task": task.pk,
            "project": task.project_id,
            "round": task.round,
            "prompt": {"text": task.prompt.text, "messages": task.prompt.messages},
            "candidates": [
                {"id": c.pk, "label": ascii_uppercase[i], "text": c.text}
                for i, c in enumerate(candidates)
            ],
            "lease_expires_at": assignment.expires_at,
            "progress": {"done": progress.done, "remaining": progress.remaining},
        }


class RankingInputSerializer(serializers.Serializer):
    """Passed to `ranking_submit` as sent: the one ranking validator checks it there."""

    ranking = extend_schema_field(
        {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer"}},
            "description": "Groups of candidate ids, best first; a group of several is a tie.",
            "example": [[12], [10, 13], [11]],
        }
    )(serializers.JSONField())
    rationale = extend_schema_field({"type": "string"})(
        serializers.JSONField(required=False, default="")
    )
    flags = extend_schema_field({"type": "array", "items": {"type": "string", "enum": FLAGS}})(
        serializers.JSONField(required=False, default=list)
    )


class RankingSerializer(serializers.ModelSerializer):
    ranking = serializers.JSONField(source="groups")
    project = serializers.IntegerField(source="task.project_id")
    round = serializers.IntegerField(source="task.round")
    annotator_username = serializers.CharField(source="annotator.get_username")
    flags = serializers.ListField(child=serializers.ChoiceField(choices=FLAGS))

    class Meta:
        model = Ranking
        fields = [
            "id",
            "task",
            "project",
            "round",
            "annotator",
            "annotator_username",
            "ranking",
            "display_order",
            "rationale",
            "flags",
            "time_spent_ms",
            "created_at",
        ]
        read_only_fields = fields


class SubmittedRankingSerializer(serializers.ModelSerializer):
    """What a submit answers: the same for a repeat of the same payload."""

    ranking = serializers.JSONField(source="groups")
    flags = serializers.ListField(child=serializers.ChoiceField(choices=FLAGS))

    class Meta:
        model = Ranking
        fields = ["id", "task", "ranking", "display_order", "rationale", "flags", "time_spent_ms"]
        read_only_fields = fields


class DemonstrationInputSerializer(serializers.Serializer):
    """Passed to `demonstration_submit` as sent: it checks the text and the candidate."""

    text = extend_schema_field({"type": "string", "description": "The ideal answer."})(
        serializers.JSONField()
    )
    edited_from = extend_schema_field(
        {"type": "integer", "nullable": True, "description": "The candidate edited, or null."}
    )(serializers.JSONField(required=False, default=None))


class DemonstrationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Demonstration
        fields = ["id", "task", "annotator", "text", "edited_from", "created_at", "updated_at"]
        read_only_fields = fields


class SkipResultSerializer(serializers.Serializer):
    task = serializers.IntegerField()
    status = serializers.CharField()


# --- pairs -----------------------------------------------------------------------------------


class PairFilterSerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=["jsonl", "json"],
        required=False,
        default="jsonl",
        help_text="jsonl: the whole export, streamed; json: one page, with `next`.",
    )
    metadata = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add votes, ties, judges, agreement, margin, models, round, task columns.",
    )
    min_agreement = serializers.FloatField(required=False, default=0.5, min_value=0, max_value=1)
    min_votes = serializers.IntegerField(
        required=False,
        default=PairPolicy.min_votes,
        min_value=_MIN_VOTES.low,
        max_value=_MIN_VOTES.high,
    )
    drop_all_bad = serializers.BooleanField(required=False, default=True)
    drop_unsafe = serializers.BooleanField(required=False, default=False)
    include_feedback = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add deployment feedback's pairs after the rankings' (none with `round`).",
    )
    include_edits = serializers.BooleanField(
        required=False,
        default=False,
        help_text='Add each edited candidate\'s edit over it (`origin: "edit"` in metadata).',
    )
    with_margin = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add each pair's vote strength as TRL's reward-model `margin` column.",
    )
    flagged_weight = serializers.FloatField(
        required=False,
        default=1.0,
        min_value=0,
        max_value=1,
        help_text="What a vote of an annotator the quality report flags counts (0: dropped).",
    )
    round = _id_field(required=False)
    model = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Model version id, or source name: pairs with a candidate from that model.",
    )
    since = InstantField(
        required=False, help_text="Count only rankings submitted at or after this time."
    )
    cursor = serializers.CharField(required=False, help_text="format=json: the `next` page.")
    page_size = serializers.IntegerField(required=False, default=500, min_value=1, max_value=5000)


class PairRowSerializer(serializers.Serializer):
    """A row as TRL reads it: strings (standard) or message lists (conversational)."""

    prompt = serializers.JSONField()
    chosen = serializers.JSONField()
    rejected = serializers.JSONField()


class PairPageSerializer(serializers.Serializer):
    results = PairRowSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="Cursor of the next page, or null.")


# --- snapshots, jobs, model versions -------------------------------------------------------------


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


# --- feedback from deployment --------------------------------------------------------------------


class FeedbackInputSerializer(serializers.Serializer):
    """Passed to `feedback_record` as sent; it checks the rules and names the field."""

    kind = serializers.ChoiceField(
        choices=DeploymentFeedback.Kind.choices,
        help_text="thumbs: a rating of one response; choice: one of two responses picked.",
    )
    source = extend_schema_field({"type": "string", "maxLength": 200})(serializers.JSONField())
    prompt = extend_schema_field(_PROMPT_SCHEMA)(serializers.JSONField())
    response = extend_schema_field({"type": "string"})(serializers.JSONField(required=False))
    rating = extend_schema_field({"type": "string", "enum": ["up", "down"]})(
        serializers.JSONField(required=False)
    )
    chosen = extend_schema_field({"type": "string"})(serializers.JSONField(required=False))
    rejected = extend_schema_field({"type": "string"})(serializers.JSONField(required=False))
    model_version = extend_schema_field({"type": "integer", "nullable": True})(
        serializers.JSONField(required=False)
    )
    end_user = extend_schema_field({"type": "string"})(serializers.JSONField(required=False))
    metadata = extend_schema_field(OpenApiTypes.OBJECT)(serializers.JSONField(required=False))


class FeedbackSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeploymentFeedback
        fields = [
            "id",
            "project",
            "kind",
            "source",
            "prompt_text",
            "prompt_messages",
            "response",
            "rating",
            "chosen",
            "rejected",
            "model_version",
            "end_user",
            "metadata",
            "created_at",
        ]
        read_only_fields = fields


# --- project archives ------------------------------------------------------------------------


class ArchiveUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A project archive (.zip) from an export.")
    name = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Name the new project this (default: the name in the archive).",
    )


class ArchiveImportResultSerializer(serializers.Serializer):
    project = serializers.IntegerField(help_text="The new project's id.")
    name = serializers.CharField()
    rows = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows imported per archive member."
    )
    users_created = serializers.ListField(
        child=serializers.CharField(),
        help_text="Usernames that did not exist here: created inactive, without a password.",
    )
    notes = serializers.ListField(child=serializers.CharField())
