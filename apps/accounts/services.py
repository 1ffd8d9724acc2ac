"""Writes for user accounts: API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from apps.accounts.keys import digest_of, new_key, visible_prefix
from apps.accounts.models import ApiToken

# How stale `last_used` may get: recording every request would turn each API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def create_api_token(user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """A new token named ``name`` for ``user``, and its key.

    The key is returned here and nowhere else: only its digest is stored, so the caller shows
    it once and it cannot be recovered afterwards.
    """
    key = new_key()
    token = ApiToken.objects.create(
        user=user, name=name.strip(), prefix=visible_prefix(key), digest=digest_of(key)
    )
    return token, key


def revoke_api_token(user: AbstractBaseUser, token_id: int) -> ApiToken:
    """Delete the token ``token_id`` of ``user``; requests with its key fail from now on.

    Raises ``ApiToken.DoesNotExist`` when ``user`` has no such token, whether it does not exist
    or belongs to someone else: the two cases look the same to the caller.
    """
    token = ApiToken.objects.get(user=user, pk=token_id)
    token.delete()
    return token


def record_api_token_use(token: ApiToken, now: datetime | None = None) -> None:
    """Set ``last_used`` to ``now``, unless it was set less than a minute ago.

    The condition is in the UPDATE itself, so concurrent requests write at most once a minute.
    """
    now = now or timezone.now()
    if token.last_used is not None and now - token.last_used < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used__isnull=True) | Q(last_used__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used=now)
    token.last_used = now
