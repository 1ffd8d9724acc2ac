"""Search over the demo world is exact: its few thousand near-identical sentences are where an
HNSW graph search loses true neighbours (it missed 1 in 20 of the top 25, and ranked the wrong
sentence first for 1 query in 12), so a small corpus takes the exact plan."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command

from apps.corpus.models import SentenceEmbedding
from apps.corpus.selectors import EXACT_SEARCH_MAX_ROWS, search_sentences
from apps.corpus.vectors import get_vector_index_rows
from apps.demo.quality import WEIGHTS
from tests.demo.test_demo_end_to_end import DemoModels

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (WEIGHTS / "clip" / "model.safetensors").is_file(),
        reason="the demo weights are not committed yet (train them: manage.py train_demo_model)",
    ),
]


def stored_vectors(model_key: str) -> tuple[list[str], np.ndarray]:
    rows = SentenceEmbedding.objects.filter(model=model_key).values_list("sentence_id", "embedding")
    ids = [sentence_id for sentence_id, _ in rows]
    matrix = np.array([np.asarray(vector, dtype=np.float32) for _, vector in rows])
    return ids, matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_unfiltered_search_of_the_demo_corpus_returns_the_true_top_25(settings, media):
    settings.MODEL_SETTINGS = DemoModels.settings
    call_command("load_demo")
    rng = np.random.default_rng(0)
    for model_key in ("clip", "paintingclip"):
        ids, matrix = stored_vectors(model_key)
        assert 0 < get_vector_index_rows(model_key, matrix.shape[1]) <= EXACT_SEARCH_MAX_ROWS
        for _ in range(200):
            # Queries near the corpus's own sentences, where the neighbours crowd closest.
            query = matrix[rng.integers(len(ids))] + rng.normal(0, 0.05, matrix.shape[1])
            query = (query / np.linalg.norm(query)).astype(np.float32)
            hits = search_sentences(query, model_key, k=25)
            scores = matrix @ query
            best = np.argsort(-scores, kind="stable")[:25]
            assert {hit.sentence_id for hit in hits} == {ids[i] for i in best}
            assert hits[0].score == pytest.approx(float(scores[best[0]]), abs=1e-3)
