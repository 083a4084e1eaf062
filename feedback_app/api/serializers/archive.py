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
