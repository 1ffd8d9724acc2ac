"""The process's model registry, configured from settings on first use.

Importing the engine imports torch, which costs a second or two; web processes that never
embed anything (most page views) should not pay it, so nothing here runs at import time.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from apps.engine import ModelRegistry

_lock = threading.Lock()
_registry: ModelRegistry | None = None


def get_registry() -> ModelRegistry:
    global _registry
    with _lock:
        if _registry is None:
            from apps import engine

            _registry = engine.configure(*engine.specs_from_env(settings.MODEL_SETTINGS))
        return _registry
