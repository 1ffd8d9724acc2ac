"""`make run`: the whole ArteFact stack on one machine, stopped cleanly by Ctrl-C.

The supervisor takes a lease on the embedded servers (and leaves a watchdog that releases it
should the supervisor be killed outright), migrates, collects static files, loads the demo
world into an empty database, then runs gunicorn and one RQ worker as children. When either
child exits, or on SIGINT/SIGTERM, it stops the other and releases the servers. Children get
SIGTERM from the kernel if the supervisor dies (PR_SET_PDEATHSIG), so nothing outlives it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from artefact_site.embedded import EmbeddedServices, ServiceError

BASE_DIR = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask the kernel to send SIGTERM to this child when the supervisor dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], cwd=BASE_DIR)


def _demo_user_exists() -> bool:
    check = (
        "from apps.demo.services import demo_user_exists; "
        "raise SystemExit(0 if demo_user_exists() else 1)"
    )
    return _manage("shell", "--verbosity", "0", "--command", check).returncode == 0


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=BASE_DIR, preexec_fn=_die_with_parent, process_group=0, env=os.environ.copy()
    )


def _wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


class Stack:
    def __init__(self) -> None:
        self.host = os.environ.get("HOST", "127.0.0.1")
        self.port = int(os.environ.get("PORT", "8000"))
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def _request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def prepare(self) -> int:
        for command in (("migrate", "--noinput"), ("collectstatic", "--noinput", "-v", "0")):
            status = _manage(*command).returncode
            if status != 0:
                return status
        if os.environ.get("LOAD_DEMO", "true").lower() in ("0", "false", "no", "off"):
            return 0
        if _manage("load_demo", "--if-empty").returncode != 0:
            print("Serving without the demo world (see the message above).", file=sys.stderr)
        return 0

    def start_children(self) -> None:
        workers = os.environ.get("WEB_CONCURRENCY", "2")
        self.children["web"] = _spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "artefact_site.wsgi:application",
                "--bind",
                f"{self.host}:{self.port}",
                "--workers",
                workers,
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ]
        )
        self.children["worker"] = _spawn(
            [sys.executable, str(BASE_DIR / "manage.py"), "model_worker"]
        )

    def supervise(self) -> None:
        while not self.stopping:
            for name, child in self.children.items():
                if child.poll() is not None:
                    print(f"\nThe {name} process exited ({child.returncode}); stopping.")
                    return
            time.sleep(0.3)

    def stop_children(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 15
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGHUP, self._request_stop)
        services = EmbeddedServices()
        try:
            services.acquire()
        except ServiceError as error:
            print(f"Could not start the embedded services: {error}", file=sys.stderr)
            return 1
        services.spawn_watchdog()
        try:
            status = self.prepare()
            if status != 0 or self.stopping:
                return status
            self.start_children()
            login = " (demo login: demo / demo)" if _demo_user_exists() else ""
            if _wait_for_port(self.host, self.port, timeout=60):
                print(
                    f"\nArteFact is running at http://{self.host}:{self.port}/{login}. "
                    "The web and model worker logs follow here; press Ctrl-C to stop.\n",
                    flush=True,
                )
            self.supervise()
            return 0
        finally:
            self.stop_children()
            stopped = services.release()
            print("Stopped." if stopped else "Stopped (servers still used by another process).")


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artefact_site.settings")
    # Read in a terminal, so one line per record; a deployment's default is JSON lines.
    os.environ.setdefault("LOG_FORMAT", "plain")
    return Stack().run()


if __name__ == "__main__":
    sys.exit(main())
