"""API tokens: named, revocable, and stored only as a digest."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A key a program sends as ``Authorization: Token <key>`` on behalf of ``user``.

    Only the SHA-256 digest of the key is stored, so a copy of the database (a backup, a leaked
    dump) holds no key that works. A fast hash is enough, unlike for passwords: keys are 256
    random bits, so there is nothing to guess, and the digest can be looked up by an index.
    ``prefix`` is the key's first characters, kept in the clear so that people can tell their
    tokens apart; it is far too short to help anyone guess the rest.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop'.")
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(default=timezone.now, editable=False)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
