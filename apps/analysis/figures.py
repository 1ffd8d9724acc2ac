"""Figure search from an analysis or from text: which plates of the corpus look like this?

Reads only: nothing is stored per query (a figure ranking is cheap, one exact scan of a few
thousand vectors or an HNSW probe, and the portal does not keep it). The vectors are the ones
sentence search uses: an analysis's stored query vector (the whole image, or the crop of a
region analysis) or one of its stored cell vectors, and a text query embedded by a model
worker through the same cached path as text sentence search (`services.embed_query`), so the
web process never loads a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from apps.analysis import selectors, services
from apps.analysis.models import Analysis
from apps.core.errors import ApplicationError
from apps.corpus.selectors import FigureHit, search_figures


def analysis_vector(analysis: Analysis, cell: tuple[int, int] | None) -> np.ndarray:
    """The stored vector [D] of the analysis's image (or crop) as figure search sees it
    (white-balanced, as the plates are), or of one grid cell (the grid's vectors, colours
    kept: balancing them too would cost a second pass of the whole grid)."""
    embedding = selectors.get_embedding(analysis)
    if embedding is None:
        raise ApplicationError(
            "analysis_not_ready", "The analysis has not finished yet; try again soon."
        )
    if cell is None:
        return embedding.figure_query()
    row, col = cell
    if not (0 <= row < embedding.grid_rows and 0 <= col < embedding.grid_cols):
        raise ApplicationError(
            "bad_cell",
            f"The grid is {embedding.grid_rows} × {embedding.grid_cols}; "
            f"cell ({row}, {col}) is outside it.",
        )
    return embedding.cell(row, col)


def figures_for_analysis(
    analysis: Analysis, *, cell: tuple[int, int] | None = None, k: int = 10
) -> list[FigureHit]:
    """Figures nearest to the analysis's image, crop or cell, under its model and its filters
    (the topics and creators it was run with, as for its sentences)."""
    topics = list(analysis.topics.values_list("id", flat=True))
    creators = list(analysis.creators.values_list("slug", flat=True))
    return search_figures(
        analysis_vector(analysis, cell), analysis.model_key, k=k, topics=topics, creators=creators
    )


def search_figures_by_text(
    query: str,
    *,
    model_key: str,
    topic_ids: Sequence[str] = (),
    creator_ids: Sequence[str] = (),
    k: int = 10,
) -> list[FigureHit]:
    """Figures nearest to a text query under the model's text tower (embedded by a worker and
    cached, exactly as for text sentence search)."""
    text = query.strip()
    if not text:
        raise ApplicationError("empty_query", "Give some words to search for (q=…).")
    services.resolve_filters(model_key, topic_ids, creator_ids)
    return search_figures(
        services.embed_query(text, model_key),
        model_key,
        k=k,
        topics=list(topic_ids),
        creators=list(creator_ids),
    )
