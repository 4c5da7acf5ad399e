"""API tokens: ``POST /api/v1/auth/token/`` (password, plus a second factor where the account has
one) and revoking it."""


from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from recognition.accounts import services as privacy_services

from .base import ApiView, errors
from .serializers import (
    CredentialsSerializer,
    TokenSerializer,
)
from .throttling import TokenCreateThrottle

# ----------------------------------------------------------------------------- tokens


def revoke_token(request: Request) -> Response:
    """Delete the caller's token: every request with it answers 401 from now on."""
    privacy_services.revoke_token(user=request.user, request=request, reason="through the API")
    return Response(status=status.HTTP_204_NO_CONTENT)


class TokenView(ApiView):
    """``POST``: username + password -> token (same token until revoked). ``DELETE``: revoke it."""

    parser_classes = (JSONParser, FormParser, MultiPartParser)

    def _is_post(self) -> bool:
        # getattr: the schema generator asks before there is a request.
        return getattr(self.request, "method", None) == "POST"

    def get_authenticators(self) -> list:
        # Credentials are in the body: a stale or revoked token header must not block a new one.
        return [] if self._is_post() else super().get_authenticators()

    def get_permissions(self) -> list:
        return [AllowAny()] if self._is_post() else super().get_permissions()

    def get_throttles(self) -> list:
        return [TokenCreateThrottle()] if self._is_post() else super().get_throttles()

    @extend_schema(
        operation_id="auth_token_create",
        tags=["auth"],
        request=CredentialsSerializer,
        responses={200: TokenSerializer, **errors(400, 429)},
        auth=[],
        summary="Get an API token",
        description="Exchange a username and password for a token (throttled per client: scope "
        "`token`). An account with two-factor sign-in also sends `otp`.",
    )
    def post(self, request: Request) -> Response:
        credentials = CredentialsSerializer(
            data=request.data, context={"request": request}
        )
        credentials.is_valid(raise_exception=True)
        try:  # an account with two-factor sign-in must pass it here too (privacy)
            token = privacy_services.issue_token(
                user=credentials.validated_data["user"],
                otp=credentials.validated_data.get("otp", ""),
                request=request,
            )
        except privacy_services.SecondFactorRequired as exc:
            raise ValidationError(exc.message, code=exc.code) from None
        return Response({"token": token.key})

    @extend_schema(
        operation_id="auth_token_revoke",
        tags=["auth"],
        request=None,
        responses={
            204: OpenApiResponse(description="Revoked."),
            **errors(401, 403, 429),
        },
        summary="Revoke the API token",
        description="Deletes the caller's token; requests with it then answer 401.",
    )
    def delete(self, request: Request) -> Response:
        return revoke_token(request)


class TokenRevokeView(ApiView):
    """``POST /auth/token/revoke/``: the same as ``DELETE /auth/token/``, for clients without DELETE."""

    @extend_schema(
        operation_id="auth_token_revoke_post",
        tags=["auth"],
        request=None,
        responses={
            204: OpenApiResponse(description="Revoked."),
            **errors(401, 403, 429),
        },
        summary="Revoke the API token (POST)",
    )
    def post(self, request: Request) -> Response:
        return revoke_token(request)
