"""Rate limits whose rates are read per request, so a settings override applies at once.

Their counts live in a cache of their own (settings.CACHES["throttle"]), so they can be reset
alone: the tests do before each test (tests/conftest.py), or one test's requests would count
against the next one's in some orders (issue 26).
"""

from __future__ import annotations

from django.core.cache import caches
from django.utils.connection import ConnectionProxy
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

THROTTLE_CACHE = "throttle"


class _LiveRate:
    scope: str
    cache = ConnectionProxy(caches, THROTTLE_CACHE)

    def get_rate(self) -> str | None:
        # DRF binds THROTTLE_RATES when the class is defined; reading api_settings each time
        # lets tests (and `override_settings`) raise the limit without a restart.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserThrottle(_LiveRate, UserRateThrottle):
    pass


class AnonThrottle(_LiveRate, AnonRateThrottle):
    pass
