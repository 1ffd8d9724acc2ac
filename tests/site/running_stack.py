"""A whole `make run` stack in a child process, on a data root of its own: its own embedded
PostgreSQL and Redis, the web process and a model worker, as `artefact_site.stack` starts them."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parents[2]


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


class StackClient:
    """The API of a running stack over HTTP, with a researcher's token."""

    def __init__(self, port: int, token: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Token {token}"}

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str):
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers={**self.headers, **headers}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()

    def json(self, method: str, path: str, payload: dict | None = None):
        body = json.dumps(payload).encode() if payload is not None else None
        status, _, data = self.request(method, path, body, **{"Content-Type": "application/json"})
        return status, json.loads(data)

    def upload(self, image: bytes) -> dict:
        boundary = "artefact-test-boundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                f'filename="painting.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            + image
            + f"\r\n--{boundary}--\r\n".encode()
        )
        status, _, data = self.request(
            "POST",
            "/api/v1/analyses",
            body,
            **{"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert status == 202
        return json.loads(data)

    def wait(self, path: str, done, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, body = self.json("GET", path)
            except urllib.error.HTTPError as error:
                status, body = error.code, None
            if done(status, body):
                return body
            assert time.monotonic() < deadline, f"timed out on {path}: {status} {body}"
            time.sleep(0.3)
