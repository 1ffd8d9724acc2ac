"""Figure search on the shipped demo world: degraded plates of the corpus uploaded through the
API find their own work first (seven in eight: see the numbers below); a cell
over an object finds plates showing that kind of object more often than chance; filters and
publication apply inside the search."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from apps.corpus import services as corpus_services
from apps.corpus.models import FigureEmbedding, Work, WorkImage
from apps.corpus.selectors import search_figures
from apps.demo.corpus import build_works
from apps.demo.degrade import TEST_DEGRADATION, degrade
from apps.demo.quality import WEIGHTS
from apps.demo.scenes import HELD_OUT_START, make_scene
from tests.demo import test_demo_end_to_end
from tests.demo.test_demo_end_to_end import cell_under, finished

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        not (WEIGHTS / "clip" / "model.safetensors").is_file(),
        reason="the demo weights are not committed yet (train them: manage.py train_demo_model)",
    ),
]

PLATES = 8
"""Plates uploaded, one from each of 8 works spread over the corpus (its painters alternate
plain and painterly renderings)."""


demo_world = test_demo_end_to_end.demo_world
"""`load_demo` with the demo weights, and a pool of real model workers."""


def _post(api, image, name: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    buffer.seek(0)
    buffer.name = name
    response = api.post("/api/v1/analyses", {"image": buffer, "model": "clip"}, format="multipart")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def _degraded_plates_find_their_own_work_first(api, demo_world) -> None:
    figures = list(WorkImage.objects.order_by("work_id", "position"))
    assert FigureEmbedding.objects.filter(model="clip").count() == len(figures) > 100
    step = len(figures) // PLATES
    chosen = figures[::step][:PLATES]
    uploads = []
    for figure in chosen:
        with figure.image.open("rb") as stored:
            plate = Image.open(io.BytesIO(stored.read()))
            plate.load()
        uploads.append((figure, _post(api, degrade(plate, **TEST_DEGRADATION), figure.name)))
    assert demo_world.burst().returncode == 0
    firsts, tens, own = [], [], []
    for figure, analysis_id in uploads:
        finished(api, analysis_id)
        hits = api.get(f"/api/v1/analyses/{analysis_id}/figures", {"k": 10}).json()
        assert len(hits) == 10
        firsts.append(hits[0]["work"]["id"] == figure.work_id)
        tens.append(figure.work_id in {hit["work"]["id"] for hit in hits})
        own.append(figure.pk in {hit["id"] for hit in hits})
    print(
        f"degraded plates: own work first {np.mean(firsts):.2f}, in top 10 {np.mean(tens):.2f},"
        f" own plate in top 10 {np.mean(own):.2f}"
    )
    # Measured with the committed demo weights over these 8 plates: own work first 0.88 and in
    # the top 10 0.88 with both sides white-balanced (FIGURE_WHITE_BALANCE=grey_world, the
    # default); 0.50 and 0.62 without, when the colour cast moved the query towards other
    # scenes. Chance is ~0.02 first and ~0.25 in the top 10 (40 works). One plate in eight
    # stays lost to the 80 % crop (docs/benchmarks/figures.md has the full table).
    assert np.mean(tens) >= 0.75, tens
    assert np.mean(firsts) >= 0.75, firsts


def _a_cell_over_an_object_finds_plates_of_that_kind(api, demo_world) -> None:
    kinds_of = {
        (work.work_id, name): scene.kinds()
        for work in build_works(0)
        for name, scene, _ in work.plates
    }
    plates = {
        figure.pk: kinds_of[(figure.work_id, figure.name)] for figure in WorkImage.objects.all()
    }
    uploaded = []
    for seed in range(HELD_OUT_START + 900, HELD_OUT_START + 906):
        image, scene = make_scene(seed)
        uploaded.append((_post(api, image, f"scene-{seed}.jpg"), scene))
    assert demo_world.burst().returncode == 0
    found, chance = [], []
    for analysis_id, scene in uploaded:
        body = finished(api, analysis_id)
        for obj in scene.objects:
            row, col = cell_under(body["grid"], *obj.centre())
            hits = api.get(
                f"/api/v1/analyses/{analysis_id}/figures", {"cell": f"{row},{col}", "k": 5}
            ).json()
            found.append(np.mean([obj.kind in plates[hit["id"]] for hit in hits]))
            chance.append(np.mean([obj.kind in kinds for kinds in plates.values()]))
    print(f"cell → plates of the kind: {np.mean(found):.2f}, chance {np.mean(chance):.2f}")
    assert np.mean(found) > np.mean(chance) + 0.1


def _filters_and_publication_apply_inside_the_figure_search() -> None:
    vectors = FigureEmbedding.objects.filter(model="paintingclip").values_list(
        "embedding", flat=True
    )
    query = np.asarray(vectors[0], dtype=np.float32)
    painter = Work.objects.first().creators.first()
    by_painter = set(WorkImage.objects.filter(work__creators=painter).values_list("pk", flat=True))
    assert len(by_painter) > 10
    hits = search_figures(query, "paintingclip", k=10, creators=[painter.slug])
    assert len(hits) == 10
    assert {hit.figure_id for hit in hits} <= by_painter
    topic = Work.objects.first().topics.first()
    hits = search_figures(query, "paintingclip", k=25, topics=[topic.id])
    in_topic = set(Work.objects.filter(topics=topic).values_list("id", flat=True))
    assert len(hits) == 25
    assert {hit.work_id for hit in hits} <= in_topic

    top = search_figures(query, "paintingclip", k=5)
    hidden = top[0].work_id
    corpus_services.set_works_published([hidden], False)
    for filters in ({}, {"creators": [painter.slug]}, {"works": [hidden]}):
        hits = search_figures(query, "paintingclip", k=50, **filters)
        assert hidden not in {hit.work_id for hit in hits}


def test_figure_search_on_the_demo_world(api, demo_world):
    """One test, so that the demo world (a minute or two to load and embed) loads once."""
    _degraded_plates_find_their_own_work_first(api, demo_world)
    _a_cell_over_an_object_finds_plates_of_that_kind(api, demo_world)
    _filters_and_publication_apply_inside_the_figure_search()
