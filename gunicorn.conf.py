"""gunicorn's settings for ArteFact, read by any `gunicorn` started in the checkout (gunicorn
loads ``./gunicorn.conf.py`` by itself): `make run`, the Docker image, docs/operations.md.

- The access log ends with each response's ``X-Request-ID``, the id that the application's
  own log records of that request carry (`apps.core.logs`).
- ``/metrics`` adds up every gunicorn worker process's numbers through prometheus-client's
  multiprocess mode, which needs a folder that no earlier run has written to: the one in
  ``PROMETHEUS_MULTIPROC_DIR`` is emptied when the server starts, and without the setting
  each server makes a fresh one of its own and deletes it when it stops.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" request_id=%({x-request-id}o)s'
)

_OWN_METRICS_DIR: list[str] = []


def on_starting(server: Any) -> None:
    """Before the first worker starts (and imports prometheus-client): a clean folder."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return
    folder = tempfile.mkdtemp(prefix="artefact-metrics-")
    _OWN_METRICS_DIR.append(folder)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


def on_exit(server: Any) -> None:
    for folder in _OWN_METRICS_DIR:
        shutil.rmtree(folder, ignore_errors=True)
