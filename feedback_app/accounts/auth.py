"""DRF authentication by API token: knox's, checking only the token presented.

knox's own class also walks every other token of the user on each request to delete the
expired ones (a second query per API call). Here an expired token is refused (and deleted)
when it is presented, and the others are left for the page to show as expired.
"""

from __future__ import annotations

from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication

from .models import ApiToken


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <key>`; a 401 carries `WWW-Authenticate: Token`."""

    def _cleanup_token(self, auth_token: ApiToken) -> bool:
        if auth_token.expiry is not None and auth_token.expiry <= timezone.now():
            auth_token.delete()
            return True
        return False
