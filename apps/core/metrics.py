"""What ``GET /metrics`` reports (Prometheus), and where each number is kept.

Three kinds of numbers, kept three ways, each the simplest that stays right with several
gunicorn processes and workers on other hosts:

- Request latency and search latency are observed in the web processes. prometheus-client
  keeps them in memory, per process; with ``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` and
  the Docker image set it) every process writes its numbers to files there and a scrape adds
  up all of them, whichever gunicorn process answers it. Nothing is written to Redis or
  PostgreSQL per request, so a slow Redis does not slow the pages.
- Job durations are observed in the model workers, which may run on other hosts and so share
  no folder with the web: each worker adds every finished job to a histogram kept in Redis
  (`record_job_duration`, a few integer increments per job, atomic across workers), which a
  scrape reads. Its counts are totals since Redis last lost its data, as Prometheus expects.
- Queue depths and live workers are read from Redis at scrape time (`RedisCollector`).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterator

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric

logger = logging.getLogger(__name__)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNRESOLVED_ROUTE = "<unresolved>"

REQUEST_SECONDS = Histogram(
    "artefact_http_request_duration_seconds",
    "Time from the first middleware to the response, by URL name, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SEARCH_SECONDS = Histogram(
    "artefact_search_duration_seconds",
    "Time of one sentence vector search (apps.corpus.selectors.search_sentences), by model.",
    ["model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

JOB_SECONDS_KEY = "artefact:metrics:job-seconds"
JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, math.inf)
_SEPARATOR = "\x1f"  # between the labels of a hash field; no queue or function name holds it


def observe_request(route: str | None, method: str, status: int, seconds: float) -> None:
    """Count one request. Unknown methods are lumped together: a client cannot make labels."""
    REQUEST_SECONDS.labels(
        route=route or UNRESOLVED_ROUTE,
        method=method if method in HTTP_METHODS else "other",
        status=str(status),
    ).observe(seconds)


def timed_search[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Decorate ``search_sentences(vector, model_key, …)``: its time goes to SEARCH_SECONDS."""

    @functools.wraps(function)
    def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        model = kwargs.get("model_key", args[1] if len(args) > 1 else "unknown")
        with SEARCH_SECONDS.labels(model=str(model)).time():
            return function(*args, **kwargs)

    return timed


def _job_field(queue: str, function: str, status: str, part: str) -> str:
    return _SEPARATOR.join((queue, function, status, part))


def record_job_duration(
    connection: redis.Redis, queue: str, function: str, status: str, seconds: float
) -> None:
    """Add one finished job to the Redis histogram (called by the worker after each job)."""
    bucket = next(index for index, bound in enumerate(JOB_BUCKETS) if seconds <= bound)
    pipe = connection.pipeline(transaction=False)
    pipe.hincrby(JOB_SECONDS_KEY, _job_field(queue, function, status, str(bucket)), 1)
    pipe.hincrbyfloat(JOB_SECONDS_KEY, _job_field(queue, function, status, "sum"), seconds)
    pipe.execute()


def _job_histogram(connection: redis.Redis) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "artefact_rq_job_duration_seconds",
        "Time a model worker spent on each job, by queue, job function and final status.",
        labels=["queue", "function", "status"],
    )
    series: dict[tuple[str, str, str], dict[str, float]] = {}
    for field, value in connection.hgetall(JOB_SECONDS_KEY).items():
        queue, function, status, part = field.decode().split(_SEPARATOR)
        series.setdefault((queue, function, status), {})[part] = float(value)
    for labels, parts in sorted(series.items()):
        cumulative, buckets = 0.0, []
        for index, bound in enumerate(JOB_BUCKETS):
            cumulative += parts.get(str(index), 0.0)
            buckets.append(("+Inf" if math.isinf(bound) else str(bound), cumulative))
        family.add_metric(list(labels), buckets, parts.get("sum", 0.0))
    return family


class RedisCollector:
    """Read at every scrape: jobs per RQ queue and state, live workers, job durations.

    Without Redis it reports ``artefact_redis_up 0`` and nothing else, instead of failing the
    scrape: the request latencies are still worth having then.
    """

    def __init__(self, connection: redis.Redis, queue_names: list[str]) -> None:
        self.connection = connection
        self.queue_names = queue_names

    def collect(self) -> Iterator[Metric]:
        from rq import Queue, Worker

        up = GaugeMetricFamily("artefact_redis_up", "Whether Redis answered this scrape.")
        try:
            jobs = GaugeMetricFamily(
                "artefact_rq_jobs",
                "Jobs in each RQ queue by state (queued: waiting; started: running now; "
                "failed: kept in the failed registry).",
                labels=["queue", "state"],
            )
            workers = GaugeMetricFamily(
                "artefact_rq_workers", "RQ workers registered on each queue.", labels=["queue"]
            )
            for name in self.queue_names:
                queue = Queue(name, connection=self.connection)
                jobs.add_metric([name, "queued"], queue.count)
                jobs.add_metric([name, "started"], queue.started_job_registry.count)
                jobs.add_metric([name, "failed"], queue.failed_job_registry.count)
                workers.add_metric([name], Worker.count(queue=queue))
            durations = _job_histogram(self.connection)
        except redis.RedisError as error:
            logger.warning("Metrics without Redis: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, jobs, workers, durations)


class _ThisProcess:
    """The default registry of this process, as one collector of a per-scrape registry."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


def render(connection: redis.Redis, queue_names: list[str]) -> tuple[bytes, str]:
    """The exposition text of a scrape, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())  # type: ignore[arg-type]
    registry.register(RedisCollector(connection, queue_names))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST
