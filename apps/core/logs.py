"""Request and job ids on every log record, and the two log formats (``LOG_FORMAT``).

A web request gets an id (`RequestContext` in :mod:`apps.core.middleware`: the client's
``X-Request-ID`` when it is sane, else a new one); a job it enqueues carries that id in its
``meta`` (`job_meta`), and the model worker binds it again, with the job's own id, while it
runs the job (`bound_to_job`). `ContextFilter`, on the console handler, copies both onto each
record, so one grep (or one log query) follows a painting from its upload to its results.

Context variables rather than thread locals: gunicorn's threads and any async code each see
their own values, and a value set for one request cannot leak into the next.

This module imports nothing of Django's models or of the engine: the logging configuration
names its classes before the apps are loaded.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
META_KEY = "request_id"
# What a client (or a proxy in front) may send as its own id: short, and nothing that could
# forge a log line or a JSON field (no spaces, quotes, newlines or control characters).
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def accept_request_id(incoming: str | None) -> str:
    """The client's id when it is sane, else a new random one (32 hex digits)."""
    if incoming and SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def job_meta() -> dict[str, str]:
    """``meta`` for a job enqueued now: the current request's id, if any, for the worker."""
    request_id = request_id_var.get()
    return {META_KEY: request_id} if request_id else {}


@contextmanager
def bound_to_job(job_id: str, meta: dict[str, Any] | None) -> Iterator[None]:
    """While a worker runs one job: its id, and the id of the request that enqueued it."""
    request_id = (meta or {}).get(META_KEY)
    job_token = job_id_var.set(job_id)
    request_token = request_id_var.set(request_id if isinstance(request_id, str) else None)
    try:
        yield
    finally:
        request_id_var.reset(request_token)
        job_id_var.reset(job_token)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``job_id`` to a record when they are known.

    Set on the handler (a logger's filter would miss records propagated from child loggers).
    Absent ids are left off, so a JSON line holds no ``null`` fields.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id_var), ("job_id", job_id_var)):
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


class PlainFormatter(logging.Formatter):
    """The readable one-line format, with ``[request_id=… job_id=…]`` when there are ids."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(
            f"{name}={getattr(record, name)}"
            for name in ("request_id", "job_id")
            if getattr(record, name, None)
        )
        if not ids:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{ids}]{newline}{rest}"


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object per line: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, then ``request_id``, ``job_id`` and any other ``extra`` fields; a traceback
    stays inside its record (``exc_info``) instead of spilling over many lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        super().__init__(*args, **kwargs)


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """Django's ``LOGGING`` for ``LOG_FORMAT`` (``json`` or ``plain``) and ``LOG_LEVEL``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "apps.core.logs.ContextFilter"}},
        "formatters": {
            "plain": {
                "()": "apps.core.logs.PlainFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
            },
            "json": {"()": "apps.core.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
    }
