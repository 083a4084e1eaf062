"""Request body parsers: JSON that cannot overflow the stack, and a raw JSONL body."""

from __future__ import annotations

import io

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from feedback_app.common.storable import MAX_BODY_DEPTH, too_deep


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (NaN and Infinity refused) with a bound on nesting.

    Python's json module recurses: a body nested a few thousand deep (10 kB) raised
    RecursionError here, and one just under that would raise it later, wherever the value is
    checked or written. Both are a 400 naming `body` instead.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            data = None
        else:
            # Counting brackets is cheap and bounds the depth: most bodies need no walk.
            if body.count(b"[") + body.count(b"{") <= MAX_BODY_DEPTH:
                return data
            if not too_deep(data, MAX_BODY_DEPTH):
                return data
        raise ParseError(f"JSON nested deeper than {MAX_BODY_DEPTH} levels")


class JSONLParser(parsers.BaseParser):
    """Hands the bytes on as they are: `parse_jsonl` decodes and checks them line by line."""

    media_type = "application/jsonl"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read() if stream is not None else b""


class NDJSONParser(JSONLParser):
    media_type = "application/x-ndjson"


def refuse_unreadable_body(request) -> None:
    """For a step that takes no body: one sent anyway is still parsed, so an unreadable one is a
    400 naming `body` (ParseError, api/errors.py) rather than silently ignored (issue 26)."""
    request.data  # noqa: B018 - parsing is the check; an empty body parses to {}
