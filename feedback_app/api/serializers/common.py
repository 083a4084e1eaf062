"""What every area's serializers share: the error shape, ids, text that can be stored."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from feedback_app.common import storable
from feedback_app.common.instants import parse_instant


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


class ProblemSerializer(serializers.Serializer):
    field = serializers.CharField(help_text='Where: a body field ("ranking[1]"), "url", ...')
    message = serializers.CharField()
    line = serializers.IntegerField(allow_null=True, help_text="Line or item number, if any.")


class ErrorSerializer(serializers.Serializer):
    errors = ProblemSerializer(many=True)


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
