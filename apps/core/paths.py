"""What the API may say about files on the server: never where they are.

A path shows how the host is laid out (user names, mount points, where the data lies),
which helps an attacker and means nothing to a researcher. Model settings and the messages of
errors raised on a worker can hold paths; they reach clients through these functions only.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"(),;:]+/)+[^\s/'\"(),;:]*")
"""An absolute path of at least two parts (``/srv/artefact``), not one inside a URL or a
hub id (``openai/clip-vit-base-patch32``)."""


def public_model_source(value: str | None) -> str | None:
    """A model setting as clients may see it: a hub id as it is, a local folder as
    ``local:<its name>``."""
    if not value:
        return value
    if value.startswith(("/", ".", "~")) or Path(value).exists():
        return f"local:{Path(value).name}"
    return value


def without_server_paths(text: str) -> str:
    """`text` with every absolute path cut down to its last part."""
    return _ABSOLUTE_PATH.sub(lambda found: PurePosixPath(found.group()).name or "…", text)
