"""Reads for user accounts."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from apps.accounts.keys import digest_of
from apps.accounts.models import ApiToken


def api_tokens_of(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The tokens of ``user``, newest first."""
    return ApiToken.objects.filter(user=user)


def api_token_for_key(key: str) -> ApiToken | None:
    """The token whose key is ``key``, with its user, or None when no token has that key."""
    return ApiToken.objects.select_related("user").filter(digest=digest_of(key)).first()
