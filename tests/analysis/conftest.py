"""End-to-end fixtures: a tiny CLIP on disk, a corpus embedded with it, real RQ workers.

The worker is a real `manage.py model_worker` process (ArteFact's RQ worker), started with
the test database and the test Redis in its environment, exactly as `make run` starts one.
"""

from __future__ import annotations

import io
from pathlib import Path

import django_rq
import numpy as np
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image

from apps import engine
from apps.corpus import services as corpus_services
from apps.corpus.models import WorkImage
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


def _picture(seed: int) -> bytes:
    """A painting-like image: a few coloured bands, different per seed (random noise would
    make every image look alike to a tiny random model)."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((180, 240, 3), dtype=np.uint8)
    for band in range(6):
        pixels[:, band * 40 : (band + 1) * 40] = rng.integers(0, 256, 3)
    pixels[rng.integers(0, 120) :][:60, :120] = rng.integers(0, 256, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def figures(corpus, media) -> dict[str, WorkImage]:
    """Real images for the corpus's six figures, embedded with both models; by work id."""
    by_work = {}
    for index, figure in enumerate(WorkImage.objects.order_by("work_id")):
        target = Path(default_storage.path(figure.image.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_picture(index))
        by_work[figure.work_id] = figure
    call_command("embed_corpus", "--model", "all", "--figures", "--no-progress")
    return by_work
