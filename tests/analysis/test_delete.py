"""Deleting an analysis: its rows and files go, its queued job is cancelled, a running job
ends quietly; overlays of recomputed heat maps are not left behind."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from apps.analysis import jobs, services
from apps.analysis.models import Analysis, AnalysisEmbedding, AnalysisResult, Heatmap
from apps.corpus.models import WorkImage
from tests.analysis.conftest import finished, gpu_queue, upload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def stored_files(analysis: Analysis) -> list[Path]:
    return [Path(field.path) for field in (analysis.image, analysis.thumbnail, analysis.reduced)]


def analysed_with_overlay(api, workers) -> tuple[str, Path]:
    """A done analysis with one heat map whose overlay PNG has been rendered and cached."""
    analysis_id = upload(api).json()["id"]
    assert workers.burst().returncode == 0
    sentence_id = finished(api, analysis_id)["results"][0]["sentence_id"]
    api.post(
        f"/api/v1/analyses/{analysis_id}/heatmaps", {"sentence_ids": [sentence_id]}, format="json"
    )
    assert workers.burst().returncode == 0
    assert api.get(f"/api/v1/analyses/{analysis_id}/heatmaps/{sentence_id}.png").status_code == 200
    overlay = Heatmap.objects.get(analysis_id=analysis_id).overlay
    return analysis_id, Path(overlay.path)


def test_deleting_an_analysis_removes_its_rows_and_every_stored_file(api, corpus, workers):
    analysis_id, overlay = analysed_with_overlay(api, workers)
    files = [*stored_files(Analysis.objects.get(pk=analysis_id)), overlay]
    assert all(path.is_file() for path in files)

    response = api.delete(f"/api/v1/analyses/{analysis_id}")

    assert response.status_code == 204
    assert api.get(f"/api/v1/analyses/{analysis_id}").status_code == 404
    assert not Analysis.objects.filter(pk=analysis_id).exists()
    for model in (AnalysisEmbedding, AnalysisResult, Heatmap):
        assert not model.objects.filter(analysis_id=analysis_id).exists(), model.__name__
    assert [path for path in files if path.exists()] == []


def test_only_the_owner_or_staff_may_delete(api, corpus, django_user_model, media):
    analysis_id = upload(api).json()["id"]
    files = stored_files(Analysis.objects.get(pk=analysis_id))

    api.force_authenticate(django_user_model.objects.create_user("someone-else"))
    assert api.delete(f"/api/v1/analyses/{analysis_id}").status_code == 404
    assert Analysis.objects.filter(pk=analysis_id).exists()
    assert all(path.is_file() for path in files)

    api.force_authenticate(django_user_model.objects.create_user("curator", is_staff=True))
    assert api.delete(f"/api/v1/analyses/{analysis_id}").status_code == 204
    assert not any(path.exists() for path in files)


def test_a_deletion_that_rolls_back_keeps_the_files(api, corpus, media):
    analysis_id = upload(api).json()["id"]
    analysis = Analysis.objects.get(pk=analysis_id)
    files = stored_files(analysis)

    def delete_then_fail() -> None:
        with transaction.atomic():
            services.delete_analysis(analysis)
            raise RuntimeError("a later step of the same transaction failed")

    with pytest.raises(RuntimeError):
        delete_then_fail()

    assert Analysis.objects.filter(pk=analysis_id).exists()
    assert all(path.is_file() for path in files)


def test_a_queued_job_is_cancelled_with_its_analysis(api, corpus, workers, redis_connection):
    analysis_id = upload(api).json()["id"]
    job_id = Analysis.objects.get(pk=analysis_id).job_id
    assert gpu_queue().job_ids == [job_id]

    assert api.delete(f"/api/v1/analyses/{analysis_id}").status_code == 204

    assert gpu_queue().job_ids == []
    assert Job.fetch(job_id, connection=redis_connection).get_status() == JobStatus.CANCELED
    assert workers.burst().returncode == 0
    assert AnalysisEmbedding.objects.count() == 0


def test_a_job_whose_analysis_is_deleted_while_it_runs_ends_quietly(api, corpus, workers):
    analysis_id = upload(api).json()["id"]
    job_id = Analysis.objects.get(pk=analysis_id).job_id
    settings_dict = connection.settings_dict
    database = {
        "host": settings_dict["HOST"],
        "user": settings_dict["USER"],
        "dbname": settings_dict["NAME"],
    }
    with (
        psycopg.connect(**database) as deleter,
        psycopg.connect(**database, autocommit=True) as observer,
    ):
        # Lock the row, let the worker start the job and wait on the lock, then delete the row
        # under it: the job's first write finds nothing, and its results have nowhere to go.
        # (The observer has no open transaction, so each look at pg_stat_activity is fresh.)
        deleter.execute("SELECT 1 FROM analysis_analysis WHERE id = %s FOR UPDATE", [analysis_id])
        workers.start()
        deadline = time.monotonic() + 120
        while not observer.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone():
            assert time.monotonic() < deadline, "the worker never reached the locked row"
            time.sleep(0.1)
        deleter.execute("DELETE FROM analysis_analysis WHERE id = %s", [analysis_id])
        deleter.commit()

    queue = gpu_queue()
    finished_jobs, failed_jobs = FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)
    deadline = time.monotonic() + 120
    while job_id not in finished_jobs.get_job_ids() + failed_jobs.get_job_ids():
        assert time.monotonic() < deadline, "the job never ended"
        time.sleep(0.1)
    assert job_id in finished_jobs.get_job_ids()
    assert AnalysisEmbedding.objects.count() == 0
    assert AnalysisResult.objects.count() == 0


def test_jobs_for_an_analysis_already_gone_do_nothing(api, corpus, media):
    analysis_id = upload(api).json()["id"]
    sentence_ids = corpus[:2]
    assert api.delete(f"/api/v1/analyses/{analysis_id}").status_code == 204

    assert jobs.run_analysis(analysis_id) is None
    assert jobs.run_heatmaps(analysis_id, "clip", sentence_ids) == 0
    assert AnalysisEmbedding.objects.count() == Heatmap.objects.count() == 0


def test_a_recomputed_heatmap_leaves_no_stale_overlay(api, corpus, workers, models):
    analysis_id, overlay = analysed_with_overlay(api, workers)
    heatmap = Heatmap.objects.get(analysis_id=analysis_id)

    services.compute_heatmaps(analysis_id, heatmap.model_key, [heatmap.sentence_id])

    heatmap.refresh_from_db()
    assert not heatmap.overlay
    assert not overlay.exists()


def test_corpus_figures_are_not_managed_by_the_cleanup(media, corpus):
    """The importer deletes a work's image rows and rewrites the files under the same names;
    deleting a row must not delete the file."""
    image = WorkImage.objects.first()
    assert image is not None
    path = Path(image.image.path)
    assert path.is_file()

    image.delete()

    assert path.is_file()


def test_deleting_a_researcher_deletes_their_analyses_files(api, corpus, media):
    files = stored_files(Analysis.objects.get(pk=upload(api).json()["id"]))
    assert all(path.is_file() for path in files)

    api.user.delete()

    assert Analysis.objects.count() == 0
    assert not any(path.exists() for path in files)


def test_a_deletion_while_a_job_stores_its_results_waits_for_them_and_removes_them(
    api, corpus, media
):
    """A job stores its vectors and ranking in one transaction that holds the analysis row.
    A deletion that comes meanwhile must wait for that commit and delete what it stored:
    deciding what to delete before the job commits left rows pointing at a deleted analysis
    (a foreign-key error, answered as a 500)."""
    analysis_id = upload(api).json()["id"]
    settings_dict = connection.settings_dict
    database = {
        "host": settings_dict["HOST"],
        "user": settings_dict["USER"],
        "dbname": settings_dict["NAME"],
    }
    answers = []
    with (
        psycopg.connect(**database) as job,
        psycopg.connect(**database, autocommit=True) as observer,
    ):
        job.execute("SELECT 1 FROM analysis_analysis WHERE id = %s FOR UPDATE", [analysis_id])
        job.execute(
            "INSERT INTO analysis_analysisembedding (analysis_id, model_key, dim, grid_rows,"
            " grid_cols, query_vector, cell_vectors) VALUES (%s, 'clip', 1, 1, 1, %s, %s)",
            [analysis_id, b"\0\0\0\0", b"\0\0\0\0"],
        )

        def delete() -> None:
            try:
                answers.append(api.delete(f"/api/v1/analyses/{analysis_id}"))
            except Exception as error:  # the test client re-raises a view's exception
                answers.append(error)

        deleting = threading.Thread(target=delete)
        deleting.start()
        deadline = time.monotonic() + 60
        while not observer.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone():
            assert time.monotonic() < deadline, "the deletion never waited for the job"
            time.sleep(0.05)
        job.commit()
        deleting.join(timeout=60)

    assert getattr(answers[0], "status_code", answers[0]) == 204
    assert not Analysis.objects.filter(pk=analysis_id).exists()
    assert AnalysisEmbedding.objects.count() == 0
