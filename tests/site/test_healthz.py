"""/healthz against the real database, the real Redis and a real RQ worker process."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Worker

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def rq_worker(redis_connection):
    """A real `manage.py rqworker` process, registered in the test Redis."""
    process = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), "rqworker", "gpu", "default"],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "artefact_site.settings_test"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not Worker.all(connection=redis_connection):
        assert process.poll() is None, "the worker exited before registering"
        assert time.monotonic() < deadline, "the worker did not register within 60 s"
        time.sleep(0.2)
    yield process
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.django_db
def test_healthz_reports_database_pgvector_redis_and_worker(client, rq_worker):
    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["ok"] is True
    assert body["database"]["ok"] is True
    major, minor = (int(part) for part in body["database"]["pgvector"].split(".")[:2])
    assert (major, minor) >= (0, 8)
    assert body["redis"]["ok"] is True
    assert body["workers"] == {"ok": True, "count": 1}
    assert "gpu" in body["redis"]["queues"]


@pytest.mark.django_db
def test_healthz_is_503_without_a_worker(client, redis_connection):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["workers"]


@pytest.mark.django_db
def test_healthz_is_503_and_names_redis_when_redis_is_down(client, settings, tmp_path):
    dead = f"unix://{tmp_path / 'no-redis.sock'}?db=0"
    settings.RQ_QUEUES = {name: {"URL": dead} for name in settings.RQ_QUEUES}

    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["redis", "workers"]
    assert body["database"]["ok"] is True
    assert body["redis"]["error"]
