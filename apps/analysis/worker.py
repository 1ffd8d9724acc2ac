"""The RQ worker class of ArteFact's model queue.

A `SimpleWorker` runs jobs in its own process instead of forking a work-horse per job: the
models loaded by the first job stay loaded for the next (and CUDA, which does not survive a
fork, keeps working). This subclass also loads the configured models before taking the first
job (and runs each on a blank image, which compiles an int8 vision encoder), so the first
researcher does not wait for either, and publishes what it loaded in Redis for
`/healthz` and the API's model list.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from rq.worker import SimpleWorker

from apps import engine
from apps.analysis.registry import get_registry

logger = logging.getLogger(__name__)

MODELS_KEY = "artefact:worker-models"


class ModelWorker(SimpleWorker):
    def work(self, *args, **kwargs):
        if settings.ANALYSIS_PRELOAD_MODELS:
            registry = get_registry()
            registry.status(load=True)
            engine.warm_up(registry)  # MODEL_DTYPE=int8 compiles its vision encoder here
            self.publish_models()
        return super().work(*args, **kwargs)

    def publish_models(self) -> None:
        status = get_registry().status()
        self.connection.hset(MODELS_KEY, self.name, json.dumps(status))

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        finally:
            self.publish_models()

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
