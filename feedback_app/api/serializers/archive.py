"""Project archives (views/archive.py)."""

from __future__ import annotations

from rest_framework import serializers


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
