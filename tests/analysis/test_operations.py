"""Operations with real model worker processes: a request's id in the worker's JSON log lines
and in /metrics, and what SIGTERM does to a worker in the middle of a job."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from rq.job import Job
from rq.registry import StartedJobRegistry

from apps.analysis.jobs import STOPPED
from apps.analysis.models import Analysis
from tests.analysis.conftest import gpu_queue, painting_bytes
from tests.conftest import BASE_DIR, token_client
from tests.site.test_metrics import samples, value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def upload_with_id(api, request_id: str):
    image = io.BytesIO(painting_bytes())
    image.name = "painting.jpg"
    return api.post(
        "/api/v1/analyses", {"image": image}, format="multipart", HTTP_X_REQUEST_ID=request_id
    )


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_requests_id_follows_its_job_into_the_worker_logs_and_metrics(
    api, corpus, workers, django_user_model
):
    response = upload_with_id(api, "upload-4711")
    assert response.status_code == 202, response.json()
    assert response["X-Request-ID"] == "upload-4711"
    analysis = Analysis.objects.get(pk=response.json()["id"])
    assert Job.fetch(analysis.job_id, connection=gpu_queue().connection).meta == {
        "request_id": "upload-4711"
    }

    result = workers.burst(LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr

    records = json_lines(result.stderr)
    of_job = [record for record in records if record.get("job_id") == analysis.job_id]
    assert of_job, result.stderr
    assert all(record.get("request_id") == "upload-4711" for record in of_job)
    assert any(
        record["logger"] == "apps.analysis.worker"
        and record["message"].startswith(f"Job {analysis.job_id} (")
        and "ended finished" in record["message"]
        for record in of_job
    ), of_job
    # Outside the job (start-up, idling) records carry neither id.
    assert any("job_id" not in record and "request_id" not in record for record in records)
    assert Analysis.objects.get(pk=analysis.pk).status == "done"

    heatmaps = api.post(
        f"/api/v1/analyses/{analysis.pk}/heatmaps",
        {"sentence_ids": corpus[:2]},
        format="json",
        HTTP_X_REQUEST_ID="heatmaps-1",
    )
    assert heatmaps.status_code == 202, heatmaps.json()
    job = Job.fetch(heatmaps.json()["job_id"], connection=gpu_queue().connection)
    assert job.meta == {"request_id": "heatmaps-1"}
    assert workers.burst().returncode == 0

    staff = token_client(django_user_model.objects.create_user("ops", is_staff=True))
    searches = "artefact_search_duration_seconds_count"
    before = samples(staff.get("/metrics").content.decode())
    assert api.get(f"/api/v1/analyses/{analysis.pk}/cells/3/4?k=5").status_code == 200
    scraped = samples(staff.get("/metrics").content.decode())
    jobs = "artefact_rq_job_duration_seconds_count"
    for function in ("apps.analysis.jobs.run_analysis", "apps.analysis.jobs.run_heatmaps"):
        assert value(scraped, jobs, queue="gpu", function=function, status="finished") == 1
    model = analysis.model_key
    assert value(scraped, searches, model=model) == value(before, searches, model=model) + 1


@contextmanager
def analysis_row_locked(analysis_id: str) -> Iterator[psycopg.Connection]:
    """Hold the analysis row, so that a worker running its job blocks at its first update."""
    settings_dict = connection.settings_dict
    with psycopg.connect(
        host=settings_dict["HOST"], user=settings_dict["USER"], dbname=settings_dict["NAME"]
    ) as blocker:
        blocker.execute("SELECT 1 FROM analysis_analysis WHERE id = %s FOR UPDATE", [analysis_id])
        yield blocker


def start_logging_worker(workers, log: Path) -> subprocess.Popen:
    """A model worker process whose stderr goes to `log` (stopped by the fixture)."""
    process = subprocess.Popen(
        workers.command(),
        cwd=BASE_DIR,
        env={**workers.env, "LOG_FORMAT": "plain"},
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    workers.processes.append(process)
    return process


def wait_until_started(job_id: str) -> None:
    registry = StartedJobRegistry(queue=gpu_queue())
    deadline = time.monotonic() + 60
    while job_id not in registry.get_job_ids():
        assert time.monotonic() < deadline, "the worker never started the job"
        time.sleep(0.1)


def test_sigterm_lets_the_running_job_finish_then_the_worker_exits(api, corpus, workers, tmp_path):
    first = Analysis.objects.get(pk=upload_with_id(api, "first").json()["id"])
    second = Analysis.objects.get(pk=upload_with_id(api, "second").json()["id"])
    log = tmp_path / "worker.log"
    with analysis_row_locked(str(first.pk)) as blocker:
        worker = start_logging_worker(workers, log)
        wait_until_started(first.job_id)
        worker.send_signal(signal.SIGTERM)
        time.sleep(2)  # the job is still blocked: the worker must wait for it, not exit
        assert worker.poll() is None, log.read_text()
        blocker.rollback()
        assert worker.wait(timeout=60) == 0, log.read_text()

    assert Analysis.objects.get(pk=first.pk).status == "done"
    # It took no new job: the second analysis is still queued, its job still waiting.
    assert Analysis.objects.get(pk=second.pk).status == "queued"
    assert gpu_queue().job_ids == [second.job_id]
    assert "ended finished" in log.read_text()


def test_a_second_sigterm_stops_the_job_and_its_analysis_fails(api, corpus, workers, tmp_path):
    analysis = Analysis.objects.get(pk=upload_with_id(api, "cold").json()["id"])
    log = tmp_path / "worker.log"
    with analysis_row_locked(str(analysis.pk)) as blocker:
        worker = start_logging_worker(workers, log)
        wait_until_started(analysis.job_id)
        worker.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # RQ ignores a second signal within 1 s of the first
        worker.send_signal(signal.SIGTERM)
        time.sleep(1)
        blocker.rollback()
        returncode = worker.wait(timeout=60)

    text = log.read_text()
    assert returncode == 0, text
    assert "cold shut down" in text
    body = api.get(f"/api/v1/analyses/{analysis.pk}").json()
    assert body["status"] == "failed", text
    assert body["error"] == STOPPED
