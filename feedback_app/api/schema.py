"""OpenAPI: every operation documents the error shape for the statuses it can answer with."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

from .serializers.common import ErrorSerializer

_ALWAYS = (400, 401, 403, 404, 429)
_WRITES = (409, 415)


class ApiSchema(AutoSchema):
    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        codes = _ALWAYS + (_WRITES if self.method in ("POST", "PUT", "PATCH") else ())
        for code in codes:
            responses.setdefault(
                str(code),
                self._get_response_for_code(ErrorSerializer, str(code), ["application/json"]),
            )
        return responses
