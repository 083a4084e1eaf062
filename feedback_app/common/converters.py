"""The `<id:...>` path converter: every id in a URL, pages and API alike."""

from __future__ import annotations

from .storable import ID_PATTERN


class IdConverter:
    """1 to 18 digits: fits a signed 64-bit column, so a huge id is a 404, not an overflow.

    Django's `<int:...>` takes any number of digits, which raw SQL (and SQLite) cannot bind.
    """

    regex = ID_PATTERN

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int | str) -> str:
        return str(value)
