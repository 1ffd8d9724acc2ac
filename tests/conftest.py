"""Fixtures shared by the whole suite: the test Redis, a tiny CLIP on disk, real RQ workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import django_rq
import pytest
import torch
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient
from rq import Worker
from transformers import CLIPModel

from apps import engine
from apps.accounts.services import create_api_token
from apps.engine import ModelRegistry
from tests.engine.conftest import CROP, save_clip, save_lora, tiny_config, write_tokenizer

BASE_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
def redis_connection():
    """The test Redis database, emptied before and after the test."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield connection
    connection.flushdb()


@dataclass(frozen=True)
class TinyModels:
    base: Path
    adapter: Path

    @property
    def settings(self) -> dict[str, str]:
        return {
            "CLIP_BASE_MODEL": str(self.base),
            "CLIP_ADAPTER": "",
            "PAINTINGCLIP_BASE_MODEL": str(self.base),
            "PAINTINGCLIP_ADAPTER": str(self.adapter),
            "MODEL_DEVICE": "cpu",
            "MODEL_DTYPE": "fp32",
        }


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    root = tmp_path_factory.mktemp("analysis_clip")
    tokenizer = write_tokenizer(root / "tokenizer")
    torch.manual_seed(0)
    base = save_clip(CLIPModel(tiny_config(tokenizer)), tokenizer, root / "base", CROP)
    adapter = save_lora(CLIPModel.from_pretrained(base), root / "lora", seed=1)
    return TinyModels(base=base, adapter=adapter)


def database_url_for_workers() -> str:
    settings = connection.settings_dict
    host = quote(str(settings["HOST"]), safe="")
    return f"postgres://{settings['USER']}@{host}:{settings['PORT'] or 5432}/{settings['NAME']}"


class Workers:
    """Starts real worker processes against the test database, Redis and media folder."""

    def __init__(self, tiny: TinyModels, media_root: Path, redis_url: str) -> None:
        self.env = {
            **os.environ,
            **tiny.settings,
            "DJANGO_SETTINGS_MODULE": "artefact_site.settings_test",
            "DATABASE_URL": database_url_for_workers(),
            "REDIS_URL": redis_url,
            "DATA_ROOT": str(media_root.parent),
            "ANALYSIS_PRELOAD_MODELS": "false",
        }
        self.processes: list[subprocess.Popen] = []

    def command(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            str(BASE_DIR / "manage.py"),
            "model_worker",
            *extra,
        ]

    def burst(self, **env: str) -> subprocess.CompletedProcess:
        """Run every queued job in one worker process, then return."""
        return subprocess.run(
            self.command("--burst"),
            cwd=BASE_DIR,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=240,
        )

    def start(self, **env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            self.command(),
            cwd=BASE_DIR,
            env={**self.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def start_listening(self, timeout: float = 180) -> subprocess.Popen:
        """Start a worker that loads its models first, and wait until RQ has registered it on
        the model queues (so that a request's wait for it is not spent loading models)."""
        queue = django_rq.get_queue(settings.RQ_PRIORITY_QUEUE)
        before = len(Worker.all(queue=queue))
        process = self.start(ANALYSIS_PRELOAD_MODELS="true")
        deadline = time.monotonic() + timeout
        while len(Worker.all(queue=queue)) <= before:
            assert process.poll() is None, "the worker exited while starting"
            assert time.monotonic() < deadline, "the worker did not start listening in time"
            time.sleep(0.2)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "test-media"
    return settings.MEDIA_ROOT


@pytest.fixture
def workers(tiny_models, media, settings, redis_connection):
    pool = Workers(tiny_models, media, settings.REDIS_URL)
    yield pool
    pool.stop()


@pytest.fixture
def api(django_user_model) -> APIClient:
    """An API client authenticated with a token of a fresh researcher account."""
    user = django_user_model.objects.create_user("researcher", password="a-long-passphrase-42")
    return token_client(user)


def token_client(user) -> APIClient:
    """An API client that sends a fresh API token of `user` (as `client.user`)."""
    client = APIClient()
    _token, key = create_api_token(user, "tests")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    client.user = user
    return client


@pytest.fixture
def models(tiny_models, settings) -> ModelRegistry:
    """Settings, and so the process's registry, pointed at the tiny models (setting
    `MODEL_SETTINGS` reconfigures the engine; the fixture puts the old value back)."""
    settings.MODEL_SETTINGS = tiny_models.settings
    return engine.get_registry()
