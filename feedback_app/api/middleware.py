"""An over-long URL under /api/v1/ gets the API's JSON 414, not a web server's HTML page."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from feedback_app.common.errors import Problem

from .errors import error_body

API_PREFIX = "/api/"


class ApiUrlLengthMiddleware:
    """Refuse API URLs longer than `API_MAX_URL_LENGTH` with a JSON 414 naming `url`.

    gunicorn refuses request lines longer than its `--limit-request-line` itself, in HTML and
    before Django sees them. Every command line that starts it sets that limit above this one
    (README, "Limits"), so each API URL too long for us is answered here, in the API's shape.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.limit: int = settings.API_MAX_URL_LENGTH

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            # The URL as sent when gunicorn passes it on, else as Django rebuilds it.
            length = len(request.META.get("RAW_URI") or request.get_full_path())
            if length > self.limit:
                problem = Problem(
                    "url", f"{length} characters, at most {self.limit}: send fewer parameters"
                )
                return JsonResponse(error_body([problem]), status=414)
        return self.get_response(request)
