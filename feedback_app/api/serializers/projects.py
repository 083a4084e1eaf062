"""Projects and the bulk prompt import (views/projects.py)."""

from __future__ import annotations

from typing import Any, get_type_hints

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from feedback_app.common.errors import ServiceError
from feedback_app.core.models import MAX_GUIDELINES, Project
from feedback_app.workspace.projects import (
    GENERATION_FIELDS,
    SETTINGS,
    check_candidates_per_task,
)
from training.config import GenerateConfig

from .common import StrictCharField, _storable_text


def _generation_schema() -> dict[str, Any]:
    """The generation defaults a project may hold (workspace/projects.py::GENERATION_FIELDS),
    typed as the generate job's config declares them: one list of names, one of types."""
    hints = get_type_hints(GenerateConfig)
    json_type = {int: {"type": "integer"}, float: {"type": "number"}}
    strings = {"type": "array", "items": {"type": "string"}}
    properties = {n: json_type.get(hints[n], strings) for n in GENERATION_FIELDS}
    return {"type": "object", "properties": properties, "additionalProperties": False}


@extend_schema_field(_generation_schema())
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
        # The settings as the services define them (workspace/projects.py), and the state.
        fields = ["id", *SETTINGS, "archived", "created_at", "updated_at"]
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

PROMPT_SCHEMA = {
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

    prompt = extend_schema_field(PROMPT_SCHEMA)(serializers.JSONField())
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
