"""API authentication for service accounts: ``Authorization: Bearer mdf_...`` (or ``Token mdf_...``).

People's tokens (DRF's authtoken, ``Token <40 hex>``) are left to DRF's TokenAuthentication, which
comes after this class in the settings. This class is first, so its ``Bearer`` challenge is what a
401 carries.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from mdefleet.service_accounts import TokenRefused, looks_like_token, service_account_authenticate

KEYWORDS = ("bearer", "token")


class ServiceAccountAuthentication(BaseAuthentication):
    """Authenticates ``mdf_`` tokens; refuses unknown, revoked and expired ones with 401."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        keyword = parts[0].decode(errors="replace").lower() if parts else ""
        if keyword not in KEYWORDS:
            return None
        if len(parts) != 2:
            if keyword == "token":
                return None  # TokenAuthentication words its own error
            raise exceptions.AuthenticationFailed("Invalid Authorization header: send 'Bearer <token>'.")
        try:
            token = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not looks_like_token(token):
            if keyword == "token":
                return None  # a person's DRF token
            raise exceptions.AuthenticationFailed("Invalid token.")
        try:
            account = service_account_authenticate(token=token)
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return account.user, account

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ServiceAccountAuthenticationScheme(OpenApiAuthenticationExtension):
    """OpenAPI: an HTTP bearer scheme for service-account tokens."""

    target_class = "mdefleet.authentication.ServiceAccountAuthentication"
    name = "serviceAccountToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "mdf_<43 characters>",
            "description": "A service account's token, created by an admin; also accepted as 'Token mdf_...'.",
        }
