"""A raw JSONL body (`Content-Type: application/jsonl`) for the prompt import."""

from __future__ import annotations

from rest_framework.parsers import BaseParser


class JSONLParser(BaseParser):
    """Hands the bytes on as they are: `parse_jsonl` decodes and checks them line by line."""

    media_type = "application/jsonl"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read() if stream is not None else b""


class NDJSONParser(JSONLParser):
    media_type = "application/x-ndjson"
