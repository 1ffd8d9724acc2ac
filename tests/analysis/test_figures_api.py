"""The figure endpoints through the API: `/analyses/{id}/figures` (whole image, crop, cell)
from an analysis run by a real worker, `/figures/search` embedded by a real listening worker,
and `/figures/{id}` with its image and metadata-free thumbnail."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from apps.analysis.models import AnalysisEmbedding
from apps.corpus import services as corpus_services
from apps.corpus.selectors import search_figures
from tests.analysis.conftest import finished, upload

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_figure_finds_itself_first_then_a_cell_and_a_crop(api, figures, workers):
    figure = figures["W103"]
    with default_storage.open(figure.image.name, "rb") as stored:
        data = stored.read()
    analysis_id = upload(api, data, name="plate.png", model="clip").json()["id"]
    region_id = upload(api, data, name="plate.png", model="clip", crop="0,0,120,180").json()["id"]
    assert workers.burst().returncode == 0
    assert finished(api, analysis_id)["status"] == "done"
    assert finished(api, region_id)["status"] == "done"

    response = api.get(f"/api/v1/analyses/{analysis_id}/figures", {"k": 3})
    assert response.status_code == 200, response.json()
    hits = response.json()
    assert len(hits) == 3
    top = hits[0]
    assert top["id"] == figure.pk
    assert top["work"]["id"] == "W103"
    assert top["score"] > 0.99
    assert [hit["rank"] for hit in hits] == [1, 2, 3]
    assert top["work"]["bibtex"] == "@misc{W103}"
    assert top["work"]["doi_url"] == "https://doi.org/10.1/3"
    # The small corpus's Markdown: the image, then two paragraphs; the first is long (3
    # sentences, but under the caption limit) and is taken as the caption.
    assert top["citing_paragraph"].startswith("Work 3 paragraph 2")
    assert top["caption"].startswith("Work 3 paragraph 1")
    image = api.get(top["image_url"])
    assert image.status_code == 200
    thumbnail = api.get(top["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail["Content-Type"] == "image/jpeg"

    cell = api.get(f"/api/v1/analyses/{analysis_id}/figures", {"cell": "0,1", "k": 6}).json()
    assert len(cell) == 6
    assert [hit["score"] for hit in cell] == sorted((h["score"] for h in cell), reverse=True)

    for params, code in (({"cell": "99,0"}, "bad_cell"), ({"cell": "a,b"}, "bad_cell")):
        refused = api.get(f"/api/v1/analyses/{analysis_id}/figures", params)
        assert refused.status_code == 400
        assert refused.json()["error"] == code

    # A crop (a region analysis) ranks by its own stored vector, not the whole image's.
    crop = api.get(f"/api/v1/analyses/{region_id}/figures", {"k": 6}).json()
    # Figure search ranks by the white-balanced crop's vector, stored beside the query vector.
    region = AnalysisEmbedding.objects.get(analysis_id=region_id)
    vector = region.figure_query()
    assert region.figure_vector is not None
    assert float(vector @ region.query()) < 0.9999
    expected = search_figures(vector, "clip", k=6)
    assert [(h["id"], round(h["score"], 5)) for h in crop] == [
        (hit.figure_id, round(hit.score, 5)) for hit in expected
    ]
    whole = api.get(f"/api/v1/analyses/{analysis_id}/figures", {"k": 6}).json()
    assert [h["score"] for h in crop] != [h["score"] for h in whole]

    # Unpublished works' figures disappear from the ranking and from /figures/{id}.
    corpus_services.set_works_published(["W103"], False)
    hits = api.get(f"/api/v1/analyses/{analysis_id}/figures", {"k": 10}).json()
    assert "W103" not in {hit["work"]["id"] for hit in hits}
    assert len(hits) == 5
    assert api.get(f"/api/v1/figures/{figure.pk}").status_code == 404


def test_figure_detail_and_its_errors(api, figures):
    figure = figures["W101"]
    body = api.get(f"/api/v1/figures/{figure.pk}").json()
    assert body["id"] == figure.pk
    assert body["name"] == "fig_1.png"
    assert body["work"]["title"] == "On Painting 1"
    missing = api.get("/api/v1/figures/999999")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    bad = api.get(f"/api/v1/work-images/{figure.pk}", {"size": "huge"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "bad_size"


def test_text_search_of_figures_goes_through_the_worker_and_filters(api, figures, workers):
    workers.start_listening()
    response = api.get(
        "/api/v1/figures/search", {"q": "a red barn", "model": "paintingclip", "k": 4}
    )
    assert response.status_code == 200, response.json()
    hits = response.json()
    assert len(hits) == 4
    # Filtered inside the search: k hits when enough match (T1: W100, W102, W104).
    filtered = api.get("/api/v1/figures/search", {"q": "a red barn", "topics": "T1", "k": 2}).json()
    assert len(filtered) == 2
    assert {hit["work"]["id"] for hit in filtered} <= {"W100", "W102", "W104"}
    empty = api.get("/api/v1/figures/search", {"q": "  "})
    assert empty.status_code == 400
    assert empty.json()["error"] == "empty_query"
