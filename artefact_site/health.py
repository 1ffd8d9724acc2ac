"""What `/healthz` reports: each dependency checked on its own, so a failure names its part."""

from __future__ import annotations

from dataclasses import dataclass, field

import django_rq
from django.conf import settings
from django.db import connection
from rq import Worker

from apps.analysis.selectors import MODEL_FIELDS_FROM_WORKERS
from apps.analysis.worker import published_models, starting_workers


@dataclass
class HealthReport:
    checks: dict[str, dict] = field(default_factory=dict)

    @property
    def failing(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check["ok"]]

    @property
    def ok(self) -> bool:
        return not self.failing

    def as_dict(self) -> dict:
        return {"ok": self.ok, "failing": self.failing, **self.checks}


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
    except Exception as error:  # any driver error means "down"; the message says which
        return {"ok": False, "error": str(error).strip().splitlines()[0]}
    if row is None:
        return {"ok": False, "error": "the pgvector extension is not installed (run migrate)"}
    return {"ok": True, "vendor": connection.vendor, "pgvector": row[0]}


def _redis() -> dict:
    try:
        redis = django_rq.get_connection("default")
        redis.ping()
        workers = Worker.all(connection=redis)
    except Exception as error:  # any client error means "down"
        return {"ok": False, "error": str(error).strip().splitlines()[0]}
    return {
        "ok": True,
        "workers": len(workers),
        "queues": sorted({queue for worker in workers for queue in worker.queue_names()}),
        "published_models": published_models(redis, [worker.name for worker in workers]),
        "starting": starting_workers(redis),
    }


def _starting_clause(starting: list[dict]) -> str:
    """'; 1 worker is starting (warming up its models, for 40 s)', or nothing."""
    if not starting:
        return ""
    oldest = starting[0]
    workers = "1 worker is" if len(starting) == 1 else f"{len(starting)} workers are"
    return f"; {workers} starting ({oldest['stage']}, for {oldest['seconds']} s)"


def _workers(redis_check: dict) -> dict:
    if not redis_check["ok"]:
        return {"ok": False, "error": "Redis is down, so no worker can be reached"}
    count, starting = redis_check["workers"], redis_check["starting"]
    extra = {"starting": starting} if starting else {}
    if count == 0:
        error = f"no RQ worker serves '{settings.RQ_GPU_QUEUE}' yet" + _starting_clause(starting)
        return {"ok": False, "count": 0, "error": error, **extra}
    return {"ok": True, "count": count, **extra}


def _models(redis_check: dict) -> dict:
    """Per model key, what the live workers loaded: ok when every key loaded somewhere."""
    if not redis_check["ok"]:
        return {"ok": False, "error": "Redis is down, so no worker can report its models"}
    by_worker = redis_check.pop("published_models")
    starting = redis_check.pop("starting")
    keys: dict[str, dict] = {}
    for status in by_worker.values():
        for key, state in status.items():
            current = keys.setdefault(key, {"loaded": False})
            if state["loaded"]:
                keys[key] = {
                    "loaded": True,
                    "device": state["device"],
                    **{name: state.get(name) for name in MODEL_FIELDS_FROM_WORKERS},
                }
            elif state.get("error") and not current["loaded"]:
                current["error"] = state["error"]
    if not keys:
        error = "no worker has reported loading its models yet"
        return {"ok": False, "error": error + _starting_clause(starting)}
    failing = sorted(key for key, state in keys.items() if not state["loaded"])
    if failing:
        return {"ok": False, "error": f"not loaded: {', '.join(failing)}", "keys": keys}
    return {"ok": True, "keys": keys}


def check() -> HealthReport:
    report = HealthReport()
    report.checks["database"] = _database()
    report.checks["redis"] = _redis()
    report.checks["workers"] = _workers(report.checks["redis"])
    report.checks["models"] = _models(report.checks["redis"])
    return report
