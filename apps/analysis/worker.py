"""The RQ worker class of ArteFact's model queue.

A `SimpleWorker` runs jobs in its own process instead of forking a work-horse per job: the
models loaded by the first job stay loaded for the next (and CUDA, which does not survive a
fork, keeps working). This subclass also loads the configured models before taking the first
job (and runs each on a blank image, which compiles an int8 vision encoder), so the first
researcher does not wait for either, and publishes what it loaded in Redis for
`/healthz` and the API's model list.

RQ registers a worker only when it starts taking jobs, which with int8 encoders to compile can
be a minute or two after the process started. Until then the worker announces what it is doing
under its own key, so that `/healthz` can say "starting" instead of "no worker".

While it runs a job, every log record carries the job's id and the id of the web request that
enqueued it (`apps.core.logs`), and when the job ends its duration goes to the Redis histogram
that `/metrics` reports (`apps.core.metrics`).

Stopping (RQ's own rules, which this class keeps): the first SIGTERM or SIGINT during a job is
a warm shutdown, the job runs to its end and the worker then exits 0 without taking another;
a second one, a second or more later, is a cold shutdown: `SystemExit` is raised inside the
job, RQ records the job as failed and its failure callback runs (`jobs.analysis_failed`).
"""

from __future__ import annotations

import json
import logging
import time

import redis
from django.conf import settings
from django.db import close_old_connections
from rq.exceptions import InvalidJobOperation
from rq.worker import SimpleWorker

from apps import engine  # lazy: `/healthz` imports this module and loads no model code
from apps.core.logs import bound_to_job
from apps.core.metrics import record_job_duration

logger = logging.getLogger(__name__)

MODELS_KEY = "artefact:worker-models"
STARTING_KEY_PREFIX = "artefact:worker-starting:"
# A worker killed while starting leaves its announcement behind for at most this long.
STARTING_TTL_SECONDS = 900


class ModelWorker(SimpleWorker):
    def work(self, *args, **kwargs):
        if settings.ANALYSIS_PRELOAD_MODELS:
            registry = engine.get_registry()
            since = time.time()
            self.announce_start("loading its models", since)
            registry.status(load=True)
            compiling = (
                " and compiling its int8 encoders" if registry.int8_kernels == "torchao" else ""
            )
            self.announce_start(f"warming up its models{compiling}", since)
            engine.warm_up(registry)
            self.publish_models()
            self.connection.delete(STARTING_KEY_PREFIX + self.name)
        return super().work(*args, **kwargs)

    def announce_start(self, stage: str, since: float) -> None:
        """Say what this worker does before it takes jobs (see the module docstring)."""
        logger.info("Worker %s is %s.", self.name, stage)
        announcement = json.dumps({"stage": stage, "since": since})
        self.connection.set(STARTING_KEY_PREFIX + self.name, announcement, ex=STARTING_TTL_SECONDS)

    def publish_models(self) -> None:
        status = engine.get_registry().status()
        self.connection.hset(MODELS_KEY, self.name, json.dumps(status))

    def execute_job(self, job, queue):
        started = time.monotonic()
        # As Django does around each request: a connection that broke while the worker waited
        # (a PostgreSQL restart) is closed, and the job's first query opens a working one.
        close_old_connections()
        with bound_to_job(job.id, job.meta):
            try:
                return super().execute_job(job, queue)
            finally:
                close_old_connections()
                self.job_ended(job, queue.name, time.monotonic() - started)
                self.publish_models()

    def job_ended(self, job, queue_name: str, seconds: float) -> None:
        """Log the job's end and count its duration; a Redis error here loses one count, not
        the worker."""
        try:
            status = job.get_status(refresh=True)
        except InvalidJobOperation:  # its result has already expired (result_ttl=0)
            status = None
        status_name = getattr(status, "value", None) or "finished"
        logger.info(
            "Job %s (%s) ended %s after %.2f s.", job.id, job.func_name, status_name, seconds
        )
        try:
            record_job_duration(self.connection, queue_name, job.func_name, status_name, seconds)
        except redis.RedisError as error:
            logger.warning("Job %s's duration was not counted: %s", job.id, error)

    def register_death(self, *args, **kwargs):
        self.connection.hdel(MODELS_KEY, self.name)
        return super().register_death(*args, **kwargs)


def published_models(connection, worker_names: list[str]) -> dict[str, dict]:
    """What each live worker has published about its models, by worker name."""
    if not worker_names:
        return {}
    values = connection.hmget(MODELS_KEY, worker_names)
    return {
        name: json.loads(value) for name, value in zip(worker_names, values, strict=True) if value
    }


def starting_workers(connection) -> list[dict]:
    """Workers still loading or warming up their models, oldest first: name, stage, seconds."""
    now = time.time()
    found = []
    for key in connection.scan_iter(match=STARTING_KEY_PREFIX + "*", count=100):
        value = connection.get(key)
        if value is None:  # it finished starting between the scan and the read
            continue
        name = key.decode() if isinstance(key, bytes) else key
        announcement = json.loads(value)
        found.append(
            {
                "name": name.removeprefix(STARTING_KEY_PREFIX),
                "stage": announcement["stage"],
                "seconds": round(now - announcement["since"]),
            }
        )
    return sorted(found, key=lambda worker: -worker["seconds"])
