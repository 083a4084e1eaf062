"""Cursor pages over the primary key: stable under inserts, an explicit order on every list."""

from __future__ import annotations

from base64 import b64encode
from urllib import parse

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination

from feedback_app.common.storable import is_id

BAD_CURSOR = "not a cursor this endpoint returned"


class IdCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request) -> int:
        # DRF falls back to the default on a bad value; say what is wrong instead.
        raw = request.query_params.getlist(self.page_size_query_param)
        if not raw:
            return self.page_size
        value = raw[0]
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        ok = len(raw) == 1 and value.isascii() and value.isdigit() and len(value) <= 4
        if not ok or not 1 <= int(value) <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"a whole number from 1 to {self.max_page_size}"]}
            )
        return int(value)

    def decode_cursor(self, request) -> Cursor | None:
        """Only a cursor this endpoint handed out, else a 400 naming `cursor`.

        DRF answers a cursor it cannot decode with a 404, takes many it can decode but never
        made ("", "YQ==") for the first page, and passes the position on to the query
        unchecked (a 500 for "p=x"). Here a cursor must be exactly what `encode_cursor`
        writes, and its position an id.
        """
        raw = request.query_params.getlist(self.cursor_query_param)
        if not raw:
            return None
        if len(raw) > 1:
            raise ValidationError({self.cursor_query_param: ["given more than once"]})
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            cursor = None
        if (
            cursor is None
            or (cursor.position is not None and not is_id(cursor.position))
            or _encoded(cursor) != raw[0]
            or raw[0] == ""
        ):
            raise ValidationError({self.cursor_query_param: [BAD_CURSOR]})
        return cursor


def _encoded(cursor: Cursor) -> str:
    """The cursor as DRF's `CursorPagination.encode_cursor` writes it into the link."""
    tokens: dict[str, str] = {}
    if cursor.offset != 0:
        tokens["o"] = str(cursor.offset)
    if cursor.reverse:
        tokens["r"] = "1"
    if cursor.position is not None:
        tokens["p"] = cursor.position
    return b64encode(parse.urlencode(tokens, doseq=True).encode("ascii")).decode("ascii")


class NewestFirstPagination(IdCursorPagination):
    ordering = "-id"
