"""API tokens over the API: get one with a password, list and revoke one's own.

The services are `accounts.tokens`' (the account page calls the same ones). Failed passwords
here count towards the lockout like the login page's (django-axes): once locked, this endpoint
answers 429 with field `credentials` (accounts/lockout.py) until the cool-off passes.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.accounts.models import ApiToken
from feedback_app.accounts.tokens import (
    DEFAULT_EXPIRY_DAYS,
    EXPIRY_DAYS,
    NAME_MAX,
    is_expired,
    token_create,
    token_revoke,
    tokens_of,
)
from feedback_app.core.audit import Origin


class TokenScheme(KnoxTokenScheme):
    """The schema's security scheme for our subclass of knox's authentication (`Token <key>`)."""

    target_class = "feedback_app.accounts.auth.TokenAuthentication"
    name = "tokenAuth"


class TokenSerializer(serializers.ModelSerializer):
    expired = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "created", "expiry", "expired"]

    def get_expired(self, token: ApiToken) -> bool:
        return is_expired(token)


class TokenCreatedSerializer(TokenSerializer):
    """The answer to a creation (the schema's; the key is added to TokenSerializer's data)."""

    key = serializers.CharField(help_text="the token: shown this once, stored only hashed")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "key"]


class TokenCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    name = serializers.CharField(max_length=NAME_MAX)
    expiry_days = serializers.ChoiceField(
        choices=list(EXPIRY_DAYS), default=DEFAULT_EXPIRY_DAYS, help_text="0: never expires"
    )


class TokensApi(APIView):
    """GET: the caller's tokens. POST: a new token for the user whose password is given."""

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(responses={200: TokenSerializer(many=True)}, operation_id="auth_tokens_list")
    def get(self, request: Request) -> Response:
        return Response(TokenSerializer(tokens_of(request.user), many=True).data)

    @extend_schema(
        request=TokenCreateInputSerializer,
        responses={201: TokenCreatedSerializer},
        operation_id="auth_tokens_create",
    )
    def post(self, request: Request) -> Response:
        data = TokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        # The Django request: axes reads the address from it and flags a lockout on it.
        user = authenticate(
            request._request, username=fields["username"], password=fields["password"]
        )
        if user is None:
            raise ValidationError({"credentials": "username or password is wrong"})
        # Asked by password, not by a signed-in user: the token's owner is who asked.
        asked = Origin.of(request)
        origin = Origin(user=user, interface=asked.interface, address=asked.address)
        created = token_create(
            user=user, name=fields["name"], expiry_days=fields["expiry_days"], origin=origin
        )
        body = TokenSerializer(created.token).data | {"key": created.key}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenRevokeApi(APIView):
    @extend_schema(responses={204: None}, operation_id="auth_tokens_destroy")
    def delete(self, request: Request, token_id: int) -> Response:
        token = token_revoke(user=request.user, token_id=token_id, origin=Origin.of(request))
        if token is None:
            raise NotFound("no such token of yours")
        return Response(status=status.HTTP_204_NO_CONTENT)
