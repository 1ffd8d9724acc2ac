"""The signing key when ``SECRET_KEY`` is not set: random, made once, kept under DATA_ROOT.

A key written in the source would be the same on every checkout, so anyone could forge
sessions and password-reset links of a site that forgot to set one. A key generated on first
start and kept in a file only its owner can read is as good as a configured one for a single
host; several web hosts must share one, so a deployment sets ``SECRET_KEY`` itself.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

KEY_FILE_NAME = "secret_key"
FILE_MODE = 0o600


def load_or_create_secret_key(data_root: Path) -> str:
    """The key in ``data_root/secret_key``, written there first if it is not there yet.

    The file appears whole or not at all (written aside, then hard-linked into place), so
    processes starting together all read the one key that won.
    """
    path = data_root / KEY_FILE_NAME
    if not path.exists():
        data_root.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{KEY_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)
        except FileExistsError:  # another process got there first: its key stands
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if len(key) < 50:
        raise ImproperlyConfigured(
            f"{path} holds no usable key; delete it to have one generated, or set SECRET_KEY."
        )
    return key
