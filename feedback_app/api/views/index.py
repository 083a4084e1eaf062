"""GET /api/v1/: where to start — the docs, the schema and the main endpoints, as links."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

# (key, route name, what it is): the endpoints a newcomer starts from.
MAIN = [
    (
        "projects",
        "api:project-list",
        "projects you can see; per project its prompts, rounds, quality",
    ),
    ("rankings", "api:ranking-list", "rankings of the projects you administer"),
    ("jobs", "api:job-list", "launch and watch jobs (generate, build datasets, train, evaluate)"),
    ("model_versions", "api:model-version-list", "policies and reward models; promote one"),
    ("audit", "api:audit-event-list", "who did what"),
]


class ApiIndexApi(APIView):
    """Links to the documentation, the OpenAPI schema and the main endpoints."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(
            {
                "version": "v1",
                "docs": reverse("api:docs", request=request),
                "schema": reverse("api:schema", request=request),
                "guide": "docs/api.md in the repository",
                "auth": "a session, or `Authorization: Token <key>` (tokens: /account/)",
                "endpoints": {
                    key: {"url": reverse(name, request=request), "about": about}
                    for key, name, about in MAIN
                },
            }
        )
