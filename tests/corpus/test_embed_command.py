"""embed_corpus refuses unknown models and says when the engine is missing."""

from __future__ import annotations

import importlib.util

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_unknown_model_is_refused():
    with pytest.raises(CommandError, match="unknown model 'nope'"):
        call_command("embed_corpus", "--model", "nope", "--no-progress")


@pytest.mark.skipif(
    importlib.util.find_spec("apps.engine.embedding") is not None, reason="the engine is here"
)
def test_without_the_engine_the_command_says_so():
    with pytest.raises(CommandError, match="the engine is not available yet"):
        call_command("embed_corpus", "--model", "all", "--no-progress")
