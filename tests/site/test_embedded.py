"""Leases on the embedded servers: shared by processes, stopped by the last, never blocked."""

import os
import subprocess
import sys

import pytest

from artefact_site.embedded import EmbeddedServices

ONLY_REDIS = {"DATABASE_URL": "postgres://unused"}


@pytest.fixture
def services(tmp_path):
    services = EmbeddedServices(environ=ONLY_REDIS, data_root=tmp_path)
    yield services
    services.stop_all()


def test_external_urls_start_nothing(tmp_path):
    services = EmbeddedServices(
        environ={"DATABASE_URL": "postgres://x", "REDIS_URL": "redis://127.0.0.1:6379/0"},
        data_root=tmp_path,
    )
    services.acquire()

    assert services.services == []
    assert not (tmp_path / "services").exists()


def test_the_last_live_lease_stops_the_server(services):
    (redis,) = services.services
    services.acquire(pid=os.getpid())
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        services.acquire(pid=other.pid)

        assert services.release(pid=os.getpid()) is False
        assert redis.is_running()

        assert services.release(pid=other.pid) is True
        assert not redis.is_running()
    finally:
        other.kill()


def test_a_dead_process_lease_does_not_keep_the_server(services):
    (redis,) = services.services
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    services.acquire(pid=dead.pid)
    services.acquire(pid=os.getpid())

    assert services.release(pid=os.getpid()) is True
    assert not redis.is_running()


def test_a_server_left_running_is_reused_not_duplicated(services):
    (redis,) = services.services
    services.acquire()
    client = redis._client()
    client.set("marker", "kept")
    pid_before = int(services.layout.redis_pidfile.read_text())

    EmbeddedServices(environ=ONLY_REDIS, data_root=services.layout.data_root).acquire(pid=1)

    assert int(services.layout.redis_pidfile.read_text()) == pid_before
    assert client.get("marker") == b"kept"
