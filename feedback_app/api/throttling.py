"""Rate limits whose rates are read per request, so a settings override applies at once."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _LiveRate:
    scope: str

    def get_rate(self) -> str | None:
        # DRF binds THROTTLE_RATES when the class is defined; reading api_settings each time
        # lets tests (and `override_settings`) raise the limit without a restart.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserThrottle(_LiveRate, UserRateThrottle):
    pass


class AnonThrottle(_LiveRate, AnonRateThrottle):
    pass
