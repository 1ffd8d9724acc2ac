"""Faults under a running `make run` stack, with nothing restarted but the part at fault."""

import json
import time
import urllib.error

import pytest

from artefact_site.embedded import EmbeddedPostgres, EmbeddedRedis, Layout
from tests.analysis.conftest import painting_bytes
from tests.site.running_stack import StackClient, get_json

pytestmark = pytest.mark.slow


def test_after_a_postgresql_restart_the_web_process_and_the_worker_carry_on(start_stack):
    """Every web thread and the worker hold a connection that the restart ended. Before
    connections were checked on reuse, each thread's next request failed (a 500, or /healthz
    saying the database was down) and the worker's next job failed on its dead connection."""
    stack = start_stack()
    stack.wait_healthy()
    stack.manage("createsuperuser", "--noinput", "--username", "r", "--email", "r@example.org")
    api = StackClient(stack.port, stack.manage("create_api_token", "r").split()[-1])
    first = api.upload(painting_bytes(320, 240))
    api.wait(f"/api/v1/analyses/{first['id']}", lambda status, body: body["status"] == "done")
    # More requests than the web process has threads, so that each holds a connection.
    for _ in range(12):
        assert api.json("GET", "/api/v1/analyses")[0] == 200

    server = EmbeddedPostgres(Layout(stack.data_root))
    server.stop()
    assert not server.is_running()
    server.start()

    answers = []
    for _ in range(12):
        try:
            answers.append(api.json("GET", f"/api/v1/analyses/{first['id']}")[0])
        except urllib.error.HTTPError as error:
            answers.append(error.code)
        answers.append(get_json(f"http://127.0.0.1:{stack.port}/healthz")[0])
    assert answers == [200] * 24
    second = api.upload(painting_bytes(300, 260))
    done = api.wait(
        f"/api/v1/analyses/{second['id']}",
        lambda status, body: body["status"] in ("done", "failed"),
    )
    assert done["status"] == "done", done["error"]


def test_while_redis_is_stopped_uploads_are_refused_and_afterwards_work_proceeds(start_stack):
    """Redis holds the queues: while it is down an upload is refused with a sentence before
    anything is stored, the health check says so, and reading stored analyses goes on. The
    worker waits for Redis instead of exiting (which would end `make run`), and once Redis is
    back its next analysis runs."""
    stack = start_stack()
    stack.wait_healthy()
    stack.manage("createsuperuser", "--noinput", "--username", "r", "--email", "r@example.org")
    api = StackClient(stack.port, stack.manage("create_api_token", "r").split()[-1])
    first = api.upload(painting_bytes(320, 240))
    api.wait(f"/api/v1/analyses/{first['id']}", lambda status, body: body["status"] == "done")

    redis_server = EmbeddedRedis(Layout(stack.data_root))
    redis_server.stop()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            api.upload(painting_bytes(300, 260))
        assert refused.value.code == 503
        assert json.load(refused.value)["error"] == "queue_unavailable"
        assert get_json(f"http://127.0.0.1:{stack.port}/healthz") == (503, {"ok": False})
        assert api.json("GET", f"/api/v1/analyses/{first['id']}")[0] == 200
        time.sleep(3)  # the worker meets the closed socket and waits
    finally:
        redis_server.start()

    assert stack.process.poll() is None, "make run stopped while Redis was down"
    assert api.json("GET", "/api/v1/analyses")[1]["count"] == 1  # the refused upload left nothing
    second = api.upload(painting_bytes(300, 260))
    done = api.wait(
        f"/api/v1/analyses/{second['id']}",
        lambda status, body: body["status"] in ("done", "failed"),
        timeout=180,
    )
    assert done["status"] == "done", done["error"]
