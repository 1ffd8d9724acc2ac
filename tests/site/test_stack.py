"""`make run`'s supervisor: serves, and leaves nothing behind however it is stopped."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_using(data_root: Path) -> list[psutil.Process]:
    """Servers, web and worker processes whose command line or files point into data_root."""
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        environ = process.info["environ"] or {}
        if str(data_root) in cmdline or environ.get("DATA_ROOT") == str(data_root):
            found.append(process)
    return found


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


class RunningStack:
    def __init__(
        self, data_root: Path, models: dict[str, str], extra_env: dict[str, str] | None = None
    ) -> None:
        self.data_root = data_root
        self.port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL"}
        }
        env |= {
            "DATA_ROOT": str(data_root),
            "PORT": str(self.port),
            "DJANGO_SETTINGS_MODULE": "artefact_site.settings",
            "WEB_CONCURRENCY": "1",
            "LOAD_DEMO": "false",  # tests/demo/test_load_demo.py covers the demo world
            **models,
            **(extra_env or {}),
        }
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "artefact_site.stack"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_healthy(self) -> dict:
        status, body = 0, {}

        def healthy() -> bool:
            nonlocal status, body
            assert self.process.poll() is None, self.process.stdout.read()
            try:
                status, body = get_json(f"http://127.0.0.1:{self.port}/healthz")
            except OSError:
                return False
            return status == 200

        wait_until(healthy, 300, f"a healthy stack (last answer {status} {body})")
        return body

    def manage(self, *args: str) -> str:
        """Run a management command against this stack's data; its standard output."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def child(self, marker: str) -> psutil.Process:
        for process in psutil.Process(self.process.pid).children():
            if marker in " ".join(process.cmdline()):
                return process
        raise AssertionError(f"no child process running {marker}")


@pytest.fixture
def start_stack(tmp_path, tiny_models):
    """Starts stacks on tmp_path; whatever a failing test leaves running is stopped after it."""
    started: list[RunningStack] = []

    def start(**extra_env: str) -> RunningStack:
        stack = RunningStack(tmp_path, tiny_models.settings, extra_env)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        if stack.process.poll() is None:
            stack.process.send_signal(signal.SIGINT)
            try:
                stack.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stack.process.kill()
                stack.process.wait()
    for process in processes_using(tmp_path):
        with contextlib.suppress(psutil.Error):
            process.kill()


def test_stack_serves_and_stops_everything_when_the_web_process_is_killed(tmp_path, start_stack):
    stack = start_stack()
    # 200 only with the database, Redis, a worker and its models all up; an anonymous caller
    # learns no more than that.
    assert stack.wait_healthy() == {"ok": True}
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/", timeout=10) as home:
        assert home.status == 200

    stack.child("gunicorn").kill()

    assert stack.process.wait(timeout=60) == 0
    wait_until(lambda: not processes_using(tmp_path), 30, "every process of the stack to exit")


def test_a_stack_killed_outright_leaves_nothing_and_the_next_run_reuses_the_data(
    tmp_path, start_stack
):
    first = start_stack()
    first.wait_healthy()
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()

    wait_until(lambda: not processes_using(tmp_path), 60, "the watchdog to stop the servers")

    second = start_stack()
    second.wait_healthy()
    second.process.send_signal(signal.SIGINT)

    assert second.process.wait(timeout=60) == 0
    output = second.process.stdout.read()
    assert "Stopped." in output
    assert "ArteFact is running at" in output
    assert "demo login" not in output, "no demo world was loaded, so there is no demo login"
    wait_until(lambda: not processes_using(tmp_path), 30, "every process of the stack to exit")
