"""Fixtures of the library tests: a small imported corpus and finished analyses whose results
are written as a model worker writes them (no model runs: the library reads rows only)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from rest_framework.test import APIClient

from apps.analysis import services as analysis_services
from apps.analysis.models import Analysis, AnalysisEmbedding, ResultQuery
from apps.corpus.models import Sentence
from apps.corpus.selectors import SentenceHit
from tests.analysis.conftest import painting_bytes
from tests.conftest import token_client
from tests.corpus.conftest import corpus_dir, imported_corpus, sample  # noqa: F401

GRID = 7
CELL = (1, 2)


def finish(analysis: Analysis, sentence_ids: list[str], cell_ids: list[str]) -> Analysis:
    """Store a grid, a whole-image ranking of `sentence_ids` and a ranking of `cell_ids` for
    cell CELL, and mark the analysis done."""
    AnalysisEmbedding.objects.create(
        analysis=analysis,
        model_key=analysis.model_key,
        dim=4,
        grid_rows=GRID,
        grid_cols=GRID,
        query_vector=np.ones(4, dtype=np.float32).tobytes(),
        cell_vectors=np.ones((GRID, GRID, 4), dtype=np.float32).tobytes(),
        view_box=[0, 0, analysis.width, analysis.height],
        cell_boxes=[[[0, 0, 1, 1]] * GRID] * GRID,
    )
    # Stored as the worker stores its rankings.
    for query, cell, ids in [
        (analysis.query_kind, None, sentence_ids),
        (ResultQuery.CELL, CELL, cell_ids),
    ]:
        hits = [
            SentenceHit(sentence_id, sentence_id.split("_")[0], 1 - rank / 100, rank, "")
            for rank, sentence_id in enumerate(ids, start=1)
        ]
        analysis_services._store_results(analysis, query, hits, cell)
    analysis.status = Analysis.Status.DONE
    analysis.progress = 100
    analysis.save()
    return analysis


@pytest.fixture
def sentence_ids(imported_corpus) -> list[str]:  # noqa: F811
    return list(Sentence.objects.order_by("id").values_list("id", flat=True))


@pytest.fixture
def make_analysis(media, sentence_ids) -> Callable[..., Analysis]:
    """A finished analysis of `owner`: sentences 0–4 ranked for the image, 5–7 for CELL."""

    def make(owner, **kwargs) -> Analysis:
        analysis = analysis_services.create_analysis(
            owner=owner, data=painting_bytes(), filename="painting.jpg", model_key="clip", **kwargs
        )
        return finish(analysis, sentence_ids[:5], sentence_ids[5:8])

    return make


@pytest.fixture
def intruder(django_user_model) -> APIClient:
    """An API client of a second researcher, who must see none of the first one's library."""
    return token_client(django_user_model.objects.create_user("intruder"))
