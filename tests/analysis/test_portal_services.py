"""The services and geometry the portal stands on: the grid the model saw, region analyses and
their lineage, cancel and retry, more results on demand, display-size heat maps, and a model
key added by one table entry. Model work runs in this process with the tiny CLIP."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from apps import engine
from apps.analysis import selectors, services
from apps.analysis.models import Analysis, Heatmap
from apps.corpus.models import Sentence
from apps.engine import config
from tests.analysis.conftest import gpu_queue, painting_bytes, upload

pytestmark = pytest.mark.django_db


def analysed(api, **fields) -> Analysis:
    analysis_id = upload(api, painting_bytes(300, 200), **fields).json()["id"]
    services.run_analysis(analysis_id)
    return Analysis.objects.get(pk=analysis_id)


def test_the_grid_covers_the_whole_painting_in_cells_of_one_size(api, corpus, redis_connection):
    analysis = analysed(api, model="clip")

    grid = api.get(f"/api/v1/analyses/{analysis.pk}").json()["grid"]

    assert (grid["rows"], grid["cols"]) == (7, 11)  # 7 along the short side, 7 x 1.5 rounded up
    assert grid["view_box"] == [0.0, 0.0, 300.0, 200.0]
    cells = np.array(grid["cells"])  # [rows, cols, 4]
    assert cells.shape == (7, 11, 4)
    np.testing.assert_allclose(cells[0, 0, :2], [0, 0])
    np.testing.assert_allclose(cells[-1, -1, 2:], [300, 200])
    # Neighbours share edges: the cells tile the painting without gaps or overlaps.
    np.testing.assert_allclose(cells[:, 1:, 0], cells[:, :-1, 2])
    np.testing.assert_allclose(cells[1:, :, 1], cells[:-1, :, 3])
    np.testing.assert_allclose(cells[..., 2] - cells[..., 0], 300 / 11, atol=0.1)
    np.testing.assert_allclose(cells[..., 3] - cells[..., 1], 200 / 7, atol=0.1)


def test_the_centre_setting_keeps_the_square_the_model_saw(api, corpus, redis_connection, settings):
    settings.ANALYSIS_WHOLE_IMAGE = settings.ANALYSIS_CELLS = "centre"
    analysis = analysed(api, model="clip")

    grid = api.get(f"/api/v1/analyses/{analysis.pk}").json()["grid"]

    assert (grid["rows"], grid["cols"]) == (7, 7)
    assert grid["view_box"] == [50.0, 0.0, 250.0, 200.0]  # the centre square of 300 × 200
    cells = np.array(grid["cells"])
    np.testing.assert_allclose(cells[0, 0, :2], [50, 0], atol=0.1)
    np.testing.assert_allclose(cells[-1, -1, 2:], [250, 200], atol=0.1)
    np.testing.assert_allclose(cells[:, 1:, 0], cells[:, :-1, 2], atol=0.1)
    np.testing.assert_allclose(cells[1:, :, 1], cells[:-1, :, 3], atol=0.1)


def test_a_cell_outside_the_stored_grid_is_refused(api, corpus, redis_connection, settings):
    settings.ANALYSIS_WHOLE_IMAGE = settings.ANALYSIS_CELLS = "centre"
    square = analysed(api, model="clip")  # a 7 × 7 grid, as analyses stored before
    settings.ANALYSIS_WHOLE_IMAGE = settings.ANALYSIS_CELLS = "keep_aspect"
    wide = analysed(api, model="clip")  # 7 × 11

    for analysis, inside, outside in ((square, (6, 6), (0, 7)), (wide, (6, 10), (7, 0))):
        row, col = inside
        answer = api.get(f"/api/v1/analyses/{analysis.pk}/cells/{row}/{col}?k=3")
        assert answer.status_code == 200, answer.json()
        assert len(answer.json()) == 3
        row, col = outside
        refused = api.get(f"/api/v1/analyses/{analysis.pk}/cells/{row}/{col}?k=3")
        assert refused.status_code == 400
        embedding = analysis.embeddings.get()
        assert refused.json() == {
            "error": "bad_cell",
            "detail": f"The grid is {embedding.grid_rows} × {embedding.grid_cols}; "
            f"cell ({row}, {col}) is outside it.",
        }


def test_an_analysis_before_it_has_run_has_no_grid(api, corpus, redis_connection):
    analysis_id = upload(api).json()["id"]
    assert api.get(f"/api/v1/analyses/{analysis_id}").json()["grid"] is None


def test_a_region_is_a_new_analysis_whose_undo_is_its_parent(api, corpus, redis_connection):
    whole = analysed(api, model="clip", topics="T1")

    region = services.create_region_analysis(whole, [10, 20, 150, 180])

    assert region.parent == whole
    assert region.crop == [10, 20, 150, 180]
    assert region.model_key == "clip"
    assert [topic.id for topic in region.topics.all()] == ["T1"]
    assert selectors.get_lineage(region)["undo"] == whole
    assert selectors.get_lineage(whole)["redo"] == region
    # A region of a region is cut from the same painting, not from the crop.
    again = services.create_region_analysis(region, [0, 0, 100, 100])
    assert again.parent == whole
    assert (again.width, again.height) == (300, 200)


def test_cancelling_a_queued_analysis_takes_its_job_off_the_queue(
    api, corpus, redis_connection, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api)
    analysis = Analysis.objects.get(pk=response.json()["id"])
    assert gpu_queue().count == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_analysis(analysis)
    analysis.refresh_from_db()
    assert gpu_queue().count == 0
    assert (analysis.status, analysis.error) == ("failed", "Cancelled.")


def test_an_analysis_cancelled_while_it_runs_stores_nothing(
    api, corpus, redis_connection, monkeypatch
):
    analysis_id = upload(api).json()["id"]
    set_progress = services._set_progress

    def cancel_after_the_embedding(target, progress, **fields):
        set_progress(target, progress, **fields)
        if progress == 70:  # the model pass is done; the researcher presses Cancel now
            services.cancel_analysis(Analysis.objects.get(pk=target.pk))

    monkeypatch.setattr(services, "_set_progress", cancel_after_the_embedding)
    services.run_analysis(analysis_id)

    analysis = Analysis.objects.get(pk=analysis_id)
    assert analysis.status == "failed"
    assert not analysis.embeddings.exists()
    assert not analysis.results.exists()


def test_a_failed_analysis_can_be_retried(api, corpus, redis_connection):
    analysis_id = upload(api).json()["id"]
    analysis = Analysis.objects.get(pk=analysis_id)
    services.mark_analysis_failed(analysis_id, "The worker stopped.")
    old_job = Analysis.objects.get(pk=analysis_id).job_id

    services.retry_analysis(analysis)
    analysis.refresh_from_db()
    assert analysis.status == "queued"
    assert analysis.job_id != old_job
    services.run_analysis(analysis_id)
    assert Analysis.objects.get(pk=analysis_id).status == "done"
    with pytest.raises(services.ApplicationError, match="nothing to retry"):
        services.retry_analysis(Analysis.objects.get(pk=analysis_id))


def test_more_results_than_stored_are_ranked_on_demand(api, corpus, redis_connection):
    analysis = analysed(api, model="clip")
    assert analysis.results.count() == 25

    hits = services.rank_for_view(analysis, cell=None, k=50)

    assert len(hits) == 36  # the whole test corpus: min(k, matching sentences)
    assert [hit.rank for hit in hits] == list(range(1, 37))
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert len(services.rank_for_view(analysis, cell=(2, 3), k=5)) == 5


def test_a_heatmap_png_at_display_size_is_small_and_cached(api, corpus, redis_connection):
    analysis = analysed(api, model="clip")
    sentence = Sentence.objects.order_by("id").first()
    services.compute_heatmaps(str(analysis.pk), "clip", [sentence.id])
    heatmap = Heatmap.objects.get(analysis=analysis)

    small = services.render_heatmap_png(heatmap, max_side=120)
    full = services.render_heatmap_png(heatmap)

    assert Image.open(io.BytesIO(small)).size == (120, 80)
    assert Image.open(io.BytesIO(full)).size == (300, 200)
    heatmap.refresh_from_db()
    assert heatmap.display_side == 120
    assert services.render_heatmap_png(heatmap, max_side=120) == small
    response = api.get(f"/api/v1/analyses/{analysis.pk}/heatmaps/{sentence.id}.png?max_side=90")
    assert response.status_code == 200, response.content[:300]
    assert Image.open(io.BytesIO(response.content)).size == (90, 60)
    refused = api.get(f"/api/v1/analyses/{analysis.pk}/heatmaps/{sentence.id}.png?max_side=1")
    assert refused.status_code == 400
    assert refused.json()["error"] == "bad_max_side"


def test_a_third_model_key_is_one_table_entry(api, tiny_models, settings, monkeypatch):
    third = config.ModelEntry("sketchclip", "SketchCLIP", str(tiny_models.base))
    monkeypatch.setattr(config, "MODEL_TABLE", (*config.MODEL_TABLE, third))
    settings.MODEL_SETTINGS = tiny_models.settings  # reconfigures the engine from the table

    assert config.model_keys() == ["clip", "paintingclip", "sketchclip"]
    assert engine.get_registry().keys() == ["clip", "paintingclip", "sketchclip"]
    assert engine.get_registry().specs["sketchclip"].base == str(tiny_models.base)
    assert config.dataset_flag("sketchclip") == "Has SketchCLIP Embedding"
    models = {model["key"]: model for model in api.get("/api/v1/models").json()}
    assert models["sketchclip"]["label"] == "SketchCLIP"
    response = upload(api, model="sketchclip")
    assert response.status_code == 202, response.json()
    services.run_analysis(response.json()["id"])
    assert Analysis.objects.get(pk=response.json()["id"]).status == "done"


def test_where_is_maps_any_text_over_the_image(api, corpus, redis_connection):
    analysis = analysed(api, model="clip")
    response = api.post(
        f"/api/v1/analyses/{analysis.pk}/where", {"text": "  a red boat  "}, format="json"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["digest"] == services.text_digest("a red boat")
    assert api.get(body["json_url"]).json()["error"] == "heatmap_not_ready"

    services.compute_text_heatmap(str(analysis.pk), "clip", "a red boat")  # the worker's part

    values = api.get(body["json_url"]).json()
    assert (values["sentence_id"], values["text"]) == (None, "a red boat")
    heat = np.array(values["values"])
    assert heat.shape == (values["rows"], values["cols"])
    assert 0.0 <= heat.min() < heat.max() <= 1.0
    png = api.get(body["png_url"] + "?max_side=150")
    assert Image.open(io.BytesIO(png.content)).size == (150, 100)
    # The same words again replace the map instead of adding one.
    services.compute_text_heatmap(str(analysis.pk), "clip", "a red boat")
    assert Heatmap.objects.filter(analysis=analysis, sentence=None).count() == 1
    # Asked again, a stored map costs no second model pass.
    queued = gpu_queue().count
    again = api.post(f"/api/v1/analyses/{analysis.pk}/where", {"text": "a red boat"}, format="json")
    assert again.status_code == 202
    assert (again.json()["job_id"], again.json()["digest"]) == (None, body["digest"])
    assert gpu_queue().count == queued


@pytest.mark.parametrize("text", ["", "   ", "x" * 301])
def test_where_is_refuses_empty_or_long_texts(api, corpus, redis_connection, text):
    analysis = analysed(api, model="clip")
    response = api.post(f"/api/v1/analyses/{analysis.pk}/where", {"text": text}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] in ("bad_text", "invalid")
