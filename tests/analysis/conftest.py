"""End-to-end fixtures: a tiny CLIP on disk, a corpus embedded with it, real RQ workers.

The worker is a real `manage.py model_worker` process (ArteFact's RQ worker), started with
the test database and the test Redis in its environment, exactly as `make run` starts one.
"""

from __future__ import annotations

import io

import django_rq
import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from apps import engine
from apps.corpus import services as corpus_services
from apps.corpus.vectors import store_embeddings
from tests.corpus.conftest import write_corpus


@pytest.fixture
def corpus(tmp_path, models) -> list[str]:
    """Six works (36 sentences) in the ArteFact layout, imported and embedded for both keys."""
    root = tmp_path / "corpus"
    root.mkdir()
    write_corpus(root, models=())
    corpus_services.import_corpus([root])
    from apps.corpus.models import Sentence

    rows = list(Sentence.objects.order_by("id").values_list("id", "text"))
    ids = [row[0] for row in rows]
    vectors = engine.embed_texts_multi([row[1] for row in rows], ["clip", "paintingclip"])
    for key, matrix in vectors.items():
        store_embeddings(key, ids, matrix)
    return ids


def painting_bytes(width: int = 300, height: int = 200, image_format: str = "JPEG") -> bytes:
    rng = np.random.default_rng(width * height)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def upload(api, data: bytes | None = None, name: str = "painting.jpg", **fields):
    """`POST /api/v1/analyses` with a painting (a random one unless `data`)."""
    image = io.BytesIO(painting_bytes() if data is None else data)
    image.name = name
    return api.post("/api/v1/analyses", {"image": image, **fields}, format="multipart")


def finished(api, analysis_id) -> dict:
    body = api.get(f"/api/v1/analyses/{analysis_id}").json()
    assert body["status"] in ("done", "failed"), body
    return body


def gpu_queue():
    return django_rq.get_queue(settings.RQ_GPU_QUEUE)
