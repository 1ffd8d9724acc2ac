"""`manage.py model_worker`: an RQ worker for model jobs, on the queues settings name.

One command for every place that starts a model worker (`make run`, Docker, tests, GPU hosts),
so that the queues it listens on, and their order, are said once: `MODEL_WORKER_QUEUES`, the
priority queue (text queries a request is waiting for) before the GPU queue.
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run an RQ model worker on the priority and GPU queues (models load once)."

    def add_arguments(self, parser):
        parser.add_argument("--burst", action="store_true", help="Stop when the queues are empty.")
        parser.add_argument("--name", help="The worker's name in RQ (default: RQ's own).")

    def handle(self, *args, burst: bool, name: str | None, **options):
        extra = {"name": name} if name else {}
        call_command(
            "rqworker",
            *settings.MODEL_WORKER_QUEUES,
            worker_class="apps.analysis.worker.ModelWorker",
            burst=burst,
            **extra,
        )
