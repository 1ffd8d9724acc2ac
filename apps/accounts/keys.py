"""API keys: how they are made, shown and stored (the digest is all the database keeps)."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "af_"
PREFIX_LENGTH = len(KEY_PREFIX) + 6


def new_key() -> str:
    """A fresh key: ``af_`` and 256 random bits, URL-safe. The fixed start lets people and
    secret scanners recognise an ArteFact key in a config file or a commit."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest_of(key: str) -> str:
    """The hex SHA-256 of ``key``, the only form in which a key is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def visible_prefix(key: str) -> str:
    """The start of ``key`` that the profile page shows next to the token's name."""
    return key[:PREFIX_LENGTH]
