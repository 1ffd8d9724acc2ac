"""Upload → worker → results, through the API, with real PostgreSQL, Redis and RQ workers."""

from __future__ import annotations

import io
import signal
import time

import numpy as np
import psycopg
import pytest
from django.conf import settings
from django.db import connection
from PIL import Image
from rq.registry import StartedJobRegistry

from apps import engine
from apps.analysis import selectors, services
from apps.analysis.jobs import ABANDONED
from apps.analysis.models import Analysis, AnalysisEmbedding, Heatmap
from apps.corpus.models import Sentence, Work
from apps.corpus.selectors import search_sentences
from apps.engine import registry as engine_registry
from tests.analysis.conftest import finished, gpu_queue, painting_bytes, upload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_upload_runs_in_a_worker_and_returns_ranked_results(api, corpus, workers):
    response = upload(api, model="paintingclip")

    assert response.status_code == 202, response.json()
    analysis_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    assert gpu_queue().job_ids == [Analysis.objects.get(pk=analysis_id).job_id]

    result = workers.burst()
    assert result.returncode == 0, result.stderr

    body = finished(api, analysis_id)
    assert body["status"] == "done"
    assert body["progress"] == 100
    results = body["results"]
    assert len(results) == settings.ANALYSIS_RESULTS
    assert [hit["rank"] for hit in results] == list(range(1, len(results) + 1))
    scores = [hit["score"] for hit in results]
    assert scores == sorted(scores, reverse=True)
    assert results[0]["work"]["id"].startswith("W")
    assert set(body["timings"]) >= {"load_model", "embed", "search"}

    stored = AnalysisEmbedding.objects.get(analysis_id=analysis_id, model_key="paintingclip")
    expected = search_sentences(stored.query(), "paintingclip", k=settings.ANALYSIS_RESULTS)
    # The tiny model scores near-identical test sentences alike: compare the ranked scores
    # (ties may swap ids) and the best hit.
    np.testing.assert_allclose(scores, [hit.score for hit in expected], atol=1e-4)
    assert results[0]["score"] == pytest.approx(expected[0].score, abs=1e-4)


def test_the_second_job_reuses_the_loaded_model(api, corpus, workers):
    first = upload(api).json()["id"]
    second = upload(api).json()["id"]

    assert workers.burst().returncode == 0

    assert finished(api, first)["timings"]["model_was_loaded"] is False
    assert finished(api, second)["timings"]["model_was_loaded"] is True


def test_crop_is_encoded_afresh(api, corpus, workers, models):
    data = painting_bytes(400, 300)
    response = upload(api, data, crop="40,30,240,230", model="clip")
    assert response.status_code == 202, response.json()
    analysis_id = response.json()["id"]

    assert workers.burst().returncode == 0

    body = finished(api, analysis_id)
    assert body["crop"] == [40, 30, 240, 230]
    stored = AnalysisEmbedding.objects.get(analysis_id=analysis_id, model_key="clip").query()
    with Analysis.objects.get(pk=analysis_id).image.open("rb") as handle:
        image = Image.open(handle)
        image.load()
    expected = engine.embed_crop(image, (40, 30, 240, 230), "clip", registry=models)
    np.testing.assert_allclose(stored, expected, atol=1e-5)
    whole = engine.embed_image(image, "clip", registry=models)
    assert not np.allclose(stored, whole, atol=1e-3)

    # The grid subdivides the region, in pixels of the whole painting.
    embedding = AnalysisEmbedding.objects.get(analysis_id=analysis_id, model_key="clip")
    region = engine.analyse_image(image.crop((40, 30, 240, 230)), "clip", registry=models)
    np.testing.assert_allclose(embedding.cell(0, 0), region.cells[0, 0], atol=1e-5)
    np.testing.assert_allclose(embedding.cell(6, 3), region.cells[6, 3], atol=1e-5)
    grid = body["grid"]
    assert grid["view_box"] == [40.0, 30.0, 240.0, 230.0]  # the region is square
    cells = np.array(grid["cells"])
    np.testing.assert_allclose(cells[0, 0, :2], [40, 30], atol=0.1)
    np.testing.assert_allclose(cells[-1, -1, 2:], [240, 230], atol=0.1)


def reduced_copy(analysis_id) -> Image.Image:
    with Analysis.objects.get(pk=analysis_id).reduced.open("rb") as handle:
        image = Image.open(handle)
        image.load()
    return image


def test_whole_image_passes_read_the_reduced_copy(api, corpus, workers, models, settings):
    settings.ANALYSIS_REDUCED_SIDE = 64  # the tiny model's input size
    data = painting_bytes(400, 260, "PNG")
    analysis_id = upload(api, data, name="painting.png", model="clip").json()["id"]

    reduced = reduced_copy(analysis_id)
    assert reduced.format == "PPM"
    assert reduced.size == (100, 65)  # 260 // 64 = 4: a box filter over 4 x 4 pixels
    original = Image.open(io.BytesIO(data))
    np.testing.assert_array_equal(np.asarray(reduced), np.asarray(original.reduce(4)))

    assert workers.burst().returncode == 0
    assert finished(api, analysis_id)["status"] == "done"
    stored = AnalysisEmbedding.objects.get(analysis_id=analysis_id, model_key="clip")
    from_copy = engine.analyse_image(reduced, "clip", registry=models)
    np.testing.assert_allclose(stored.query(), from_copy.embedding, atol=1e-5)
    np.testing.assert_allclose(stored.cell(3, 5), from_copy.cells[3, 5], atol=1e-5)
    from_original = engine.analyse_image(original.convert("RGB"), "clip", registry=models)
    assert not np.allclose(stored.query(), from_original.embedding, atol=1e-4)


@pytest.mark.parametrize("copy", ["too small", "removed"])
def test_without_a_usable_reduced_copy_the_upload_is_read(
    api, corpus, workers, models, settings, copy
):
    if copy == "too small":
        settings.ANALYSIS_REDUCED_SIDE = 16  # a quarter of what the tiny model needs
    data = painting_bytes(400, 260)
    analysis_id = upload(api, data, model="clip").json()["id"]
    if copy == "too small":
        assert min(reduced_copy(analysis_id).size) < 64
    else:
        Analysis.objects.get(pk=analysis_id).reduced.delete(save=False)

    assert workers.burst().returncode == 0
    stored = AnalysisEmbedding.objects.get(analysis_id=analysis_id, model_key="clip")
    decoded = engine.load_image(data, min_short_side=64)
    expected = engine.analyse_image(decoded, "clip", registry=models).embedding
    np.testing.assert_allclose(stored.query(), expected, atol=1e-5)


def test_running_an_analysis_again_replaces_its_vectors(api, corpus, models, redis_connection):
    analysis_id = upload(api, model="clip").json()["id"]
    services.run_analysis(analysis_id)  # in this process: the job a dead worker left, retried
    first = AnalysisEmbedding.objects.get(analysis_id=analysis_id, model_key="clip")
    AnalysisEmbedding.objects.filter(pk=first.pk).update(
        query_vector=np.ones(first.dim, dtype=np.float32).tobytes()
    )

    services.run_analysis(analysis_id)

    again = AnalysisEmbedding.objects.get(analysis_id=analysis_id, model_key="clip")
    np.testing.assert_array_equal(again.query(), first.query())
    assert Analysis.objects.get(pk=analysis_id).status == "done"


def test_cell_click_is_a_database_search_without_model_or_queue(api, corpus, workers, monkeypatch):
    analysis_id = upload(api, model="paintingclip").json()["id"]
    assert workers.burst().returncode == 0
    monkeypatch.setattr(engine_registry, "_default_registry", None)
    jobs_before = gpu_queue().count

    response = api.get(f"/api/v1/analyses/{analysis_id}/cells/3/4?k=5")

    assert response.status_code == 200, response.json()
    hits = response.json()
    assert len(hits) == 5
    assert engine_registry._default_registry is None, "the cell click loaded a model"
    assert gpu_queue().count == jobs_before
    embedding = AnalysisEmbedding.objects.get(analysis_id=analysis_id)
    expected = search_sentences(embedding.cell(3, 4), "paintingclip", k=5)
    np.testing.assert_allclose(
        [hit["score"] for hit in hits], [hit.score for hit in expected], atol=1e-4
    )
    stored = selectors.list_results(Analysis.objects.get(pk=analysis_id), "cell", (3, 4))
    assert [(hit["rank"], hit["sentence_id"], hit["text"]) for hit in hits] == [
        (result.rank, result.sentence_id, result.sentence.text) for result in stored
    ]
    work = Work.objects.get(pk=hits[0]["work"]["id"])
    assert hits[0]["work"] == {
        "id": work.id,
        "title": work.display_title,
        "author": work.author,
        "year": work.year,
        "doi": work.doi,
    }
    assert api.get(f"/api/v1/analyses/{analysis_id}/cells/7/0").status_code == 400


def test_filters_apply_inside_the_search(api, corpus, workers):
    response = upload(api, topics="T2", creators="anna_artist")
    if response.status_code == 400:
        pytest.fail(response.json()["detail"])
    analysis_id = response.json()["id"]
    assert workers.burst().returncode == 0

    results = finished(api, analysis_id)["results"]

    works = Work.objects.filter(id__in={hit["work"]["id"] for hit in results})
    assert results, "a filter that matches works must return their sentences"
    for work in works:
        assert work.topics.filter(id="T2").exists()
        assert work.creators.filter(slug="anna_artist").exists()
    matching = sum(
        work.published_sentence_count
        for work in Work.objects.filter(topics="T2", creators="anna_artist")
    )
    assert len(results) == min(settings.ANALYSIS_RESULTS, matching)


def test_model_switch_reuses_the_image_and_filters_rerank_without_a_job(api, corpus, workers):
    analysis_id = upload(api, model="paintingclip").json()["id"]
    assert workers.burst().returncode == 0

    switched = api.post(f"/api/v1/analyses/{analysis_id}/rerun", {"model": "clip"}, format="json")
    assert switched.status_code == 202
    assert gpu_queue().count == 1
    assert workers.burst().returncode == 0
    assert finished(api, analysis_id)["model"] == "clip"
    assert set(
        AnalysisEmbedding.objects.filter(analysis_id=analysis_id).values_list(
            "model_key", flat=True
        )
    ) == {"clip", "paintingclip"}

    back = api.post(
        f"/api/v1/analyses/{analysis_id}/rerun",
        {"model": "paintingclip", "topics": ["T1"]},
        format="json",
    )
    assert back.status_code == 200
    assert gpu_queue().count == 0
    body = back.json()
    assert body["model"] == "paintingclip"
    assert body["topics"] == ["T1"]
    assert all(
        Work.objects.get(id=hit["work"]["id"]).topics.filter(id="T1").exists()
        for hit in body["results"]
    )


def test_heatmaps_for_several_sentences_in_one_job(api, corpus, workers, models):
    analysis_id = upload(api, painting_bytes(320, 240)).json()["id"]
    assert workers.burst().returncode == 0
    sentence_ids = [hit["sentence_id"] for hit in finished(api, analysis_id)["results"][:3]]

    response = api.post(
        f"/api/v1/analyses/{analysis_id}/heatmaps", {"sentence_ids": sentence_ids}, format="json"
    )
    assert response.status_code == 202, response.json()
    pending = api.get(f"/api/v1/analyses/{analysis_id}/heatmaps/{sentence_ids[0]}.png")
    assert pending.status_code == 404
    assert pending.json()["error"] == "heatmap_not_ready"
    assert workers.burst().returncode == 0

    assert Heatmap.objects.filter(analysis_id=analysis_id).count() == 3
    png = api.get(f"/api/v1/analyses/{analysis_id}/heatmaps/{sentence_ids[0]}.png")
    assert png.status_code == 200
    assert png["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (320, 240)
    raw = api.get(f"/api/v1/analyses/{analysis_id}/heatmaps/{sentence_ids[1]}.json").json()
    values = np.array(raw["values"])
    assert values.shape == (raw["rows"], raw["cols"])
    assert 0.0 <= values.min() <= values.max() <= 1.0

    # The worker explains the sentences' stored half-precision embeddings (no text encoder)
    # on the upload's reduced copy; its maps match those computed from the text on the same
    # pixels, to rounding.
    analysis = Analysis.objects.get(pk=analysis_id)
    image = reduced_copy(analysis_id)
    texts = dict(Sentence.objects.filter(id__in=sentence_ids).values_list("id", "text"))
    from_text = engine.gradeclip_maps(
        image, [texts[s] for s in sentence_ids], analysis.model_key, keep_aspect=True
    )
    for sentence_id, expected in zip(sentence_ids, from_text, strict=True):
        heatmap = Heatmap.objects.get(analysis_id=analysis_id, sentence_id=sentence_id)
        np.testing.assert_allclose(heatmap.array(), expected, atol=0.02)


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (b"", "empty.jpg", "empty_file"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "drawing.svg", "unsupported_format"),
        (b"GIF89a this is not really a gif", "fake.gif", "not_an_image"),
    ],
)
def test_a_bad_image_is_refused_and_nothing_is_stored_or_queued(
    api, corpus, media, redis_connection, data, name, code
):
    response = upload(api, data, name=name)

    assert response.status_code == 400
    assert response.json()["error"] == code
    assert response.json()["detail"].endswith(".")
    assert Analysis.objects.count() == 0
    assert gpu_queue().count == 0
    assert not any(path.is_file() for path in media.rglob("*")) if media.exists() else True


def test_unknown_model_and_filters_are_refused(api, corpus, media):
    assert upload(api, model="nope").json()["error"] == "unknown_model"
    assert upload(api, topics="T404").json()["error"] == "unknown_topic"
    assert upload(api, crop="0,0,5000,10").json()["error"] == "bad_crop"
    assert Analysis.objects.count() == 0


def test_a_job_that_raises_ends_failed_with_its_message(api, corpus, workers):
    analysis_id = upload(api).json()["id"]
    analysis = Analysis.objects.get(pk=analysis_id)
    for stored in (analysis.image, analysis.reduced):  # the job finds no pixels to read
        stored.delete(save=False)

    assert workers.burst().returncode == 0

    body = finished(api, analysis_id)
    assert body["status"] == "failed"
    assert body["error"].startswith("The analysis failed:")


def test_a_job_whose_worker_dies_is_marked_failed(api, corpus, workers):
    analysis_id = upload(api).json()["id"]
    # Hold the analysis row so that the worker blocks inside the job, then kill it there.
    settings_dict = connection.settings_dict
    with psycopg.connect(
        host=settings_dict["HOST"], user=settings_dict["USER"], dbname=settings_dict["NAME"]
    ) as blocker:
        blocker.execute("SELECT 1 FROM analysis_analysis WHERE id = %s FOR UPDATE", [analysis_id])
        worker = workers.start()
        registry = StartedJobRegistry(queue=gpu_queue())
        deadline = time.monotonic() + 60
        while not registry.get_job_ids():
            assert time.monotonic() < deadline, "the worker never started the job"
            time.sleep(0.1)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        # PostgreSQL ends a dead client's session at its next network write; end it now, so
        # its blocked UPDATE cannot land after the lock is released.
        blocker.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        blocker.rollback()

    # RQ's abandoned-job handling, as the next worker's maintenance runs it once the dead
    # worker's heartbeat (job timeout + 60 s) has expired: asked for as of that moment.
    registry.cleanup(timestamp=time.time() + settings.ANALYSIS_JOB_TIMEOUT + 120)

    body = finished(api, analysis_id)
    assert body["status"] == "failed"
    assert body["error"] == ABANDONED


def test_users_see_only_their_own_analyses_and_staff_see_all(api, corpus, django_user_model, media):
    analysis_id = upload(api).json()["id"]
    other = django_user_model.objects.create_user("someone-else")
    staff = django_user_model.objects.create_user("curator", is_staff=True)

    api.force_authenticate(other)
    assert api.get(f"/api/v1/analyses/{analysis_id}").status_code == 404
    assert api.get("/api/v1/analyses").json()["count"] == 0
    api.force_authenticate(staff)
    assert api.get(f"/api/v1/analyses/{analysis_id}").status_code == 200
    api.force_authenticate(None)
    api.credentials()
    anonymous = api.get("/api/v1/analyses")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "not_authenticated"
