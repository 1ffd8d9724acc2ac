"""The shipped demo world end to end: `load_demo`, then an upload of a held-out scene through
the API and a real worker, a cell click and a heatmap, with the committed demo weights.

The answers are checked against the scene generator's ground truth, with margins below what
`bench/demo_quality.py` measures over 200 scenes (a handful of scenes is noisier).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command

from apps.corpus.models import Work
from apps.demo.geometry import cells_inside, crop_around, to_model_box
from apps.demo.grammar import kinds_in
from apps.demo.quality import WEIGHTS
from apps.demo.scenes import HELD_OUT_START, make_scene
from tests.conftest import Workers

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        not (WEIGHTS / "clip" / "model.safetensors").is_file(),
        reason="the demo weights are not committed yet (train them: manage.py train_demo_model)",
    ),
]

SEEDS = range(HELD_OUT_START + 900, HELD_OUT_START + 904)


class DemoModels:
    """The model settings `make run` uses by default: both keys on the committed demo weights."""

    settings = {
        "CLIP_BASE_MODEL": str(WEIGHTS / "clip"),
        "CLIP_ADAPTER": "",
        "PAINTINGCLIP_BASE_MODEL": str(WEIGHTS / "clip"),
        "PAINTINGCLIP_ADAPTER": str(WEIGHTS / "paintingclip-lora"),
        "MODEL_DEVICE": "cpu",
        "MODEL_DTYPE": "fp32",
    }


@pytest.fixture
def demo_world(settings, media, redis_connection):
    settings.MODEL_SETTINGS = DemoModels.settings
    call_command("load_demo")
    pool = Workers(DemoModels(), media, settings.REDIS_URL)
    yield pool
    pool.stop()


def upload(api, seed: int, **fields) -> tuple[str, object]:
    image, scene = make_scene(seed)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = f"scene-{seed}.png"
    response = api.post(
        "/api/v1/analyses", {"image": buffer, "model": "clip", **fields}, format="multipart"
    )
    assert response.status_code == 202, response.json()
    return response.json()["id"], scene


def finished(api, analysis_id: str) -> dict:
    body = api.get(f"/api/v1/analyses/{analysis_id}").json()
    assert body["status"] == "done", body
    return body


def analyse(api, seed: int, workers: Workers, **fields) -> tuple[dict, object]:
    analysis_id, scene = upload(api, seed, **fields)
    assert workers.burst().returncode == 0
    return finished(api, analysis_id), scene


def describes_only(text: str, present: set[str]) -> bool:
    named = kinds_in(text)
    return bool(named) and named <= present


def test_demo_world_answers_about_what_is_in_the_picture(api, demo_world):
    uploaded = [upload(api, seed) for seed in SEEDS]
    assert demo_world.burst().returncode == 0

    precisions, cell_hits, explain = [], [], []
    for analysis_id, scene in uploaded:
        results = finished(api, analysis_id)["results"]
        top = results[:10]
        precisions.append(np.mean([describes_only(hit["text"], scene.kinds()) for hit in top]))
        wanted = {}
        for obj in scene.objects:
            cells = cells_inside(to_model_box(obj.box, scene.width, scene.height))
            if not cells:
                continue
            row, col = divmod(cells[len(cells) // 2], 7)
            hits = api.get(f"/api/v1/analyses/{analysis_id}/cells/{row}/{col}?k=10").json()
            cell_hits.append(any(obj.kind in kinds_in(hit["text"]) for hit in hits))
            about = [hit for hit in results if kinds_in(hit["text"]) == {obj.kind}]
            if about:
                wanted[obj] = about[0]["sentence_id"]
        if wanted:
            queued = api.post(
                f"/api/v1/analyses/{analysis_id}/heatmaps",
                {"sentence_ids": sorted(set(wanted.values()))},
                format="json",
            )
            assert queued.status_code == 202, queued.json()
            explain += [(analysis_id, scene, obj, sentence) for obj, sentence in wanted.items()]
    assert demo_world.burst().returncode == 0

    pointing = []
    for analysis_id, scene, obj, sentence_id in explain:
        raw = api.get(f"/api/v1/analyses/{analysis_id}/heatmaps/{sentence_id}.json").json()
        values = np.array(raw["values"])
        row, col = np.unravel_index(int(values.argmax()), values.shape)
        # The stored map covers the whole image (keep_aspect): cell -> pixel centre.
        cx = (col + 0.5) * scene.width / values.shape[1]
        cy = (row + 0.5) * scene.height / values.shape[0]
        x0, y0, x1, y1 = obj.box
        pointing.append(x0 <= cx <= x1 and y0 <= cy <= y1)

    assert np.mean(precisions) >= 0.6, precisions
    assert cell_hits
    assert np.mean(cell_hits) >= 0.4, cell_hits
    assert pointing
    assert np.mean(pointing) >= 0.4, pointing


def test_demo_world_crop_model_switch_and_topic_filter(api, demo_world):
    crops = []
    for seed in SEEDS:
        _, scene = make_scene(seed)
        for obj in scene.objects:
            box = crop_around(obj.box, scene.width, scene.height, 0.25)
            analysis_id, _ = upload(api, seed, crop=",".join(str(round(v)) for v in box))
            crops.append((analysis_id, obj.kind))
    assert demo_world.burst().returncode == 0
    crop_hits = [
        any(kind in kinds_in(hit["text"]) for hit in finished(api, analysis_id)["results"][:5])
        for analysis_id, kind in crops
    ]
    assert np.mean(crop_hits) >= 0.6, crop_hits

    body, scene = analyse(api, SEEDS[0], demo_world)
    switched = api.post(
        f"/api/v1/analyses/{body['id']}/rerun", {"model": "paintingclip"}, format="json"
    )
    assert switched.status_code == 202, switched.json()
    assert demo_world.burst().returncode == 0
    adapted = api.get(f"/api/v1/analyses/{body['id']}").json()
    assert adapted["model"] == "paintingclip"
    top = adapted["results"][:10]
    assert np.mean([describes_only(hit["text"], scene.kinds()) for hit in top]) >= 0.5

    topic = "T19008"  # Figures and Animals in Landscape (Demo)
    filtered = api.post(
        f"/api/v1/analyses/{body['id']}/rerun",
        {"model": "paintingclip", "topics": [topic]},
        format="json",
    )
    assert filtered.status_code == 200, filtered.json()
    results = filtered.json()["results"]
    assert results
    allowed = set(Work.objects.filter(topics=topic).values_list("id", flat=True))
    assert {hit["work"]["id"] for hit in results} <= allowed
