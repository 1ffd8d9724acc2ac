"""DRF authentication with the named, hashed API tokens of :mod:`apps.accounts.models`."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from apps.accounts.models import ApiToken
from apps.accounts.selectors import api_token_for_key
from apps.accounts.services import record_api_token_use


class ApiTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, as before, looked up by the key's digest.

    It extends DRF's class for the header parsing, the ``WWW-Authenticate: Token`` challenge
    on a 401 and drf-spectacular's ``tokenAuth`` scheme in the OpenAPI schema; only the lookup
    differs, so clients send exactly what they sent to ``rest_framework.authtoken``.
    """

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, ApiToken]:
        token = api_token_for_key(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        record_api_token_use(token)
        return token.user, token
