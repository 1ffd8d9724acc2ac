"""Reads of the corpus: vector search, a sentence's context, a work's details.

Search (:func:`search_sentences`) runs against ``corpus_sentenceembedding`` alone: the filter
is first resolved to a list of published work ids (a few thousand at most), and each embedding
row carries its ``work_id`` and a ``searchable`` flag. Two plans:

* **HNSW** with pgvector's iterative index scan (``hnsw.iterative_scan = relaxed_order``) for
  unfiltered queries and filters that keep many rows: the scan goes on past ``ef_search``
  until ``k`` rows pass the filter;
* **exact** over the filtered rows (the ``(work_id, model)`` b-tree finds them) when the
  filter's published sentences, known per work, are at most :data:`EXACT_SEARCH_MAX_ROWS`.
  For such a filter an HNSW scan would have to walk far past ``ef_search`` to find ``k``
  matches, while computing the distance to every matching row is cheap. Unfiltered queries
  take the exact plan too while the model's index holds at most that many rows (or there is
  no index): on a small corpus of near-identical sentences, such as the demo world's, the
  graph search missed 1 in 20 of the true top 25 and ranked the wrong sentence first for 1
  query in 12, where the exact scan of a few thousand rows costs about as much.

Either way the rows come back with their exact cosine similarity (the stored half-precision
vector against the float32 query) and are ranked by it. If the HNSW scan stops short of ``k``
rows (``hnsw.max_scan_tuples``), the exact plan runs, so a search returns min(k, matching
published sentences) rows whatever the filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from apps.core.metrics import timed_search
from apps.corpus.models import (
    Creator,
    FigureEmbedding,
    Sentence,
    SentenceEmbedding,
    Topic,
    Work,
    WorkImage,
)
from apps.corpus.vectors import FIGURES, SENTENCES, VectorTable, get_vector_index_rows
from apps.engine.config import model_keys

EXACT_SEARCH_MAX_ROWS = 20_000
"""Filters whose works hold at most this many published sentences, and models whose index
holds at most this many rows, are searched exactly."""
HNSW_EF_SEARCH = 100
HNSW_MAX_SCAN_TUPLES = 50_000
HNSW_FILTERED_OVERFETCH = 2


@dataclass(frozen=True)
class SentenceHit:
    """One search result: exact cosine similarity `score`, `rank` from 1."""

    sentence_id: str
    work_id: str
    score: float
    rank: int
    text: str


@dataclass(frozen=True)
class SentenceContext:
    """A sentence with its paragraph's text and its neighbours in document order."""

    sentence: Sentence
    paragraph: str | None
    before: list[Sentence]
    after: list[Sentence]


@dataclass(frozen=True)
class WorkDetails:
    """A work with what the result pages show beside it."""

    work: Work
    creators: list[Creator]
    topics: list[Topic]
    images: list[WorkImage]
    sentence_count: int


def get_stored_embeddings(model_key: str, sentence_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """The stored vectors (float32) of those sentences under `model_key` that have one."""
    rows = SentenceEmbedding.objects.filter(
        model=model_key, sentence_id__in=list(sentence_ids)
    ).values_list("sentence_id", "embedding")
    return {sentence_id: np.asarray(vector, np.float32) for sentence_id, vector in rows}


def count_embeddings() -> dict[str, int]:
    """Number of stored vectors per model key."""
    counts = SentenceEmbedding.objects.values_list("model").annotate(n=Count("*")).order_by()
    return dict(counts)


def count_matching_works(
    topics: Iterable[str] = (),
    creators: Iterable[str] = (),
    works: Iterable[str] = (),
    *,
    figures_of: str | None = None,
) -> dict[str, int]:
    """Published works passing the filter → their published sentence counts, or with
    `figures_of` (a model key) their searchable figure vectors under that model (one probe of
    the ``(work_id, model)`` b-tree per work: figures are few per work).

    Any of the topics, any of the creators, any of the works; the three kinds intersect.
    One plain query: this runs before every filtered search.
    """
    count, params = "w.published_sentence_count", []
    if figures_of is not None:
        count = (
            f"(SELECT count(*) FROM {FigureEmbedding._meta.db_table} f"
            f" WHERE f.work_id = w.id AND f.model = %s AND f.searchable)"
        )
        params.append(figures_of)
    conditions = ["w.published"]
    for values, through, column in (
        (list(topics), Work.topics.through, "topic_id"),
        (list(creators), Work.creators.through, "creator_id"),
    ):
        if values:
            conditions.append(
                f"EXISTS (SELECT 1 FROM {through._meta.db_table} x"
                f" WHERE x.work_id = w.id AND x.{column} = ANY(%s))"
            )
            params.append(values)
    works = list(works)
    if works:
        conditions.append("w.id = ANY(%s)")
        params.append(works)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT w.id, {count} FROM {Work._meta.db_table} w WHERE {' AND '.join(conditions)}",
            params,
        )
        return dict(cursor.fetchall())


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{value:.9g}" for value in vector.tolist()) + "]"


@timed_search
def search_sentences(
    vector: np.ndarray,
    model_key: str,
    k: int = 25,
    topics: Sequence[str] = (),
    creators: Sequence[str] = (),
    works: Sequence[str] = (),
) -> list[SentenceHit]:
    """The k published sentences nearest to `vector` under `model_key`, best first.

    See the module docstring for the plans. Raises ValueError for an unknown model key or a
    vector that is not a finite, non-zero 1-D array.
    """
    query = _checked_query(vector, model_key)
    if k < 1:
        return []
    work_ids: list[str] | None = None
    exact = None
    if topics or creators or works:
        counts = count_matching_works(topics, creators, works)
        if not counts:
            return []
        work_ids = list(counts)
        exact = sum(counts.values()) <= EXACT_SEARCH_MAX_ROWS
    rows = _nearest_rows(
        query,
        model_key,
        k,
        SENTENCES,
        work_ids=work_ids,
        exact=exact,
        extra=(", s.text", f" JOIN {Sentence._meta.db_table} s ON s.id = h.sentence_id"),
    )
    return [
        SentenceHit(sentence_id=sid, work_id=wid, score=float(sc), rank=rank, text=text)
        for rank, (sid, wid, sc, text) in enumerate(rows, start=1)
    ]


@dataclass(frozen=True)
class FigureHit:
    """One figure search result: the figure (a :class:`WorkImage` id), exact cosine `score`,
    `rank` from 1."""

    figure_id: int
    work_id: str
    score: float
    rank: int


@timed_search
def search_figures(
    vector: np.ndarray,
    model_key: str,
    k: int = 10,
    topics: Sequence[str] = (),
    creators: Sequence[str] = (),
    works: Sequence[str] = (),
) -> list[FigureHit]:
    """The k figures of published works nearest to `vector` under `model_key`, best first.

    The same plans and guarantees as :func:`search_sentences` over ``corpus_figureembedding``:
    filters resolved to published work ids and applied inside the search, exact cosine scores,
    min(k, matching figures with a vector) rows. A filter's size is the number of its works'
    figure vectors, counted in the query that resolves it; works without one are left out.
    """
    query = _checked_query(vector, model_key)
    if k < 1:
        return []
    work_ids: list[str] | None = None
    exact = None
    if topics or creators or works:
        counts = count_matching_works(topics, creators, works, figures_of=model_key)
        work_ids = [work_id for work_id, figures in counts.items() if figures]
        if not work_ids:
            return []
        exact = sum(counts.values()) <= EXACT_SEARCH_MAX_ROWS
    rows = _nearest_rows(query, model_key, k, FIGURES, work_ids=work_ids, exact=exact)
    return [
        FigureHit(figure_id=int(fid), work_id=wid, score=float(sc), rank=rank)
        for rank, (fid, wid, sc) in enumerate(rows, start=1)
    ]


def _checked_query(vector: np.ndarray, model_key: str) -> np.ndarray:
    """The query as float32 [D]; ValueError for an unknown model key or a vector that is not a
    finite, non-zero 1-D array."""
    if model_key not in model_keys():
        raise ValueError(f"unknown model key {model_key!r}; known: {', '.join(model_keys())}")
    query = np.asarray(vector, dtype=np.float32)
    if query.ndim != 1 or not np.isfinite(query).all() or not np.any(query):
        raise ValueError("the query vector must be a finite, non-zero 1-D array")
    return query


def _nearest_rows(
    query: np.ndarray,
    model_key: str,
    k: int,
    table: VectorTable,
    *,
    work_ids: list[str] | None,
    exact: bool | None,
    extra: tuple[str, str] = ("", ""),
) -> list[tuple]:
    """(item id, work id, exact score, *extra columns) of the k nearest searchable rows of
    `table`, best first (ties by item id). `work_ids` restricts to those works (None: all);
    `exact` is the filter's plan, decided by the caller from its size (None when unfiltered:
    exact while the model's index holds at most EXACT_SEARCH_MAX_ROWS rows, or there is none).
    `extra` is a select list and a join on the candidates ``h``, so that texts come in the
    same round trip."""
    filtered = work_ids is not None
    dim = query.shape[0]
    if exact is None:
        indexed = get_vector_index_rows(model_key, dim, table)
        exact = indexed is None or indexed <= EXACT_SEARCH_MAX_ROWS
    literal = _vector_literal(query)
    item, select, join = table.item_column, *extra
    where = "e.model = %s AND e.searchable" + (" AND e.work_id = ANY(%s)" if filtered else "")
    where_params: list[object] = [model_key] + ([work_ids] if filtered else [])
    score = f"1 - (e.embedding::vector({dim}) <=> %s::vector({dim}))"
    head = f"SELECT h.{item}, h.work_id, h.score{select} FROM"
    inner = f" (SELECT e.{item}, e.work_id, {score} AS score FROM {table.name} e WHERE {where}"
    with connection.cursor() as cursor:
        rows: list[tuple] = []
        if not exact:
            # A relaxed-order scan returns rows roughly, not exactly, by distance: take more
            # than k when a filter drops rows, and keep the k best by exact score. The hnsw.*
            # settings are per session (only HNSW scans read them) and set by every search, so
            # settings and query go to the server together, in one round trip.
            candidates = k * (HNSW_FILTERED_OVERFETCH if filtered else 1)
            rows = _fetch_last(
                cursor,
                f"SET hnsw.ef_search = {max(HNSW_EF_SEARCH, k)};"
                f" SET hnsw.iterative_scan = relaxed_order;"
                f" SET hnsw.max_scan_tuples = {HNSW_MAX_SCAN_TUPLES};"
                f" {head}{inner}"
                f"  ORDER BY e.embedding::halfvec({dim}) <=> %s::halfvec({dim}) LIMIT %s) h"
                f"{join}",
                [literal, *where_params, literal, candidates],
            )
        if len(rows) < k:
            # Ordering by the float32 cast matches no index: an exact scan of the rows.
            rows = _fetch_last(
                cursor,
                f"{head}{inner} ORDER BY score DESC, e.{item} LIMIT %s) h{join}",
                [literal, *where_params, k],
            )
    rows.sort(key=lambda row: (-row[2], row[0]))
    return rows[:k]


def list_works_for_hits(hits: Iterable[SentenceHit]) -> dict[str, Work]:
    """The works of `hits` by id, with the fields a hit shows of them (`work_summary`)."""
    works = Work.objects.filter(id__in={hit.work_id for hit in hits})
    return {work.id: work for work in works.only("id", "title", "author", "year", "doi")}


def list_card_works(hits: Iterable[SentenceHit]) -> dict[str, Work]:
    """The works of `hits` by id, with their creators and topics, for result cards."""
    works = (
        Work.objects.filter(id__in={hit.work_id for hit in hits})
        .defer("markdown")
        .prefetch_related("creators", Prefetch("topics", Topic.objects.exclude(name=None)))
    )
    return {work.id: work for work in works}


def list_topics_with_counts() -> list[Topic]:
    """The named topics (the filter list) with `work_count`, their published works."""
    return list(
        Topic.objects.exclude(name=None)
        .annotate(work_count=Count("works", filter=Q(works__published=True)))
        .order_by("name")
    )


def list_creators_with_counts() -> list[Creator]:
    """Every creator with `work_count`, their published works, by display name."""
    return list(
        Creator.objects.annotate(
            work_count=Count("works", filter=Q(works__published=True))
        ).order_by("name")
    )


def _fetch_last(cursor: object, sql: str, params: list[object]) -> list[tuple]:
    """Run statements sent as one batch and fetch the rows of the last (the SELECT)."""
    cursor.execute(sql, params)
    while cursor.description is None and cursor.nextset():
        pass
    return cursor.fetchall()


def get_sentence_context(
    sentence_id: str, *, neighbours: int = 2, include_unpublished: bool = False
) -> SentenceContext | None:
    """A sentence, its paragraph and up to `neighbours` sentences either side; None if hidden."""
    queryset = Sentence.objects.select_related("paragraph", "work")
    if not include_unpublished:
        queryset = queryset.filter(published=True, work__published=True)
    sentence = queryset.filter(id=sentence_id).first()
    if sentence is None:
        return None
    siblings = Sentence.objects.filter(work_id=sentence.work_id)
    if not include_unpublished:
        siblings = siblings.filter(published=True)
    before = list(
        siblings.filter(position__lt=sentence.position).order_by("-position")[:neighbours]
    )
    after = list(siblings.filter(position__gt=sentence.position).order_by("position")[:neighbours])
    return SentenceContext(
        sentence=sentence,
        paragraph=sentence.paragraph.text if sentence.paragraph else None,
        before=before[::-1],
        after=after,
    )


def get_work_details(work_id: str, *, include_unpublished: bool = False) -> WorkDetails | None:
    """A work with creators, topics and images; None if missing or unpublished."""
    queryset = Work.objects.defer("markdown")
    if not include_unpublished:
        queryset = queryset.filter(published=True)
    work = queryset.filter(id=work_id).first()
    if work is None:
        return None
    return WorkDetails(
        work=work,
        creators=list(work.creators.all()),
        topics=list(work.topics.all()),
        images=list(work.images.all()),
        sentence_count=(
            work.sentences.count() if include_unpublished else work.published_sentence_count
        ),
    )


def list_sentences_missing_embeddings(
    model_keys: Sequence[str], *, after: str = "", limit: int = 10_000
) -> list[tuple[str, str, list[str]]]:
    """(id, text, keys it lacks) of sentences after id `after` lacking a vector of any key.

    Keyset pagination by id, so a long embedding run can walk the corpus in slices.
    """
    has = {
        f"has_{key}": Exists(SentenceEmbedding.objects.filter(model=key, sentence=OuterRef("pk")))
        for key in model_keys
    }
    missing_any = Q()
    for name in has:
        missing_any |= Q(**{name: False})
    rows = (
        Sentence.objects.filter(id__gt=after)
        .annotate(**has)
        .filter(missing_any)
        .order_by("id")
        .values_list("id", "text", *has)[:limit]
    )
    return [
        (sid, text, [key for key, present in zip(model_keys, flags, strict=True) if not present])
        for sid, text, *flags in rows
    ]


def _figures_missing(model_keys: Sequence[str]) -> QuerySet[WorkImage]:
    has = {
        f"has_{key}": Exists(FigureEmbedding.objects.filter(model=key, figure=OuterRef("pk")))
        for key in model_keys
    }
    missing_any = Q()
    for name in has:
        missing_any |= Q(**{name: False})
    return WorkImage.objects.annotate(**has).filter(missing_any)


def list_figures_missing_embeddings(
    model_keys: Sequence[str], *, after: int = 0, limit: int = 256
) -> list[tuple[WorkImage, list[str]]]:
    """(figure, keys it lacks) of figures with an id above `after` lacking a vector of any key,
    in id order: keyset pagination, so a long embedding run walks the figures in slices."""
    figures = _figures_missing(model_keys).filter(pk__gt=after).order_by("pk")[:limit]
    return [
        (figure, [key for key in model_keys if not getattr(figure, f"has_{key}")])
        for figure in figures
    ]


def count_figures_missing_embeddings(model_keys: Sequence[str]) -> int:
    """How many figures lack a vector of any of the keys (a run's progress total)."""
    return _figures_missing(model_keys).count()


def count_figure_embeddings() -> dict[str, int]:
    """Number of stored figure vectors per model key."""
    counts = FigureEmbedding.objects.values_list("model").annotate(n=Count("*")).order_by()
    return dict(counts)


def list_published_figures(figure_ids: Iterable[int]) -> dict[int, WorkImage]:
    """Figures of published works by id, with their works (for hits and the figure page)."""
    figures = WorkImage.objects.filter(pk__in=list(figure_ids), work__published=True)
    return {figure.pk: figure for figure in figures.select_related("work").defer("work__markdown")}


def get_published_figure(figure_id: int) -> WorkImage | None:
    """One figure of a published work, with its work; None if missing or unpublished."""
    return list_published_figures([figure_id]).get(figure_id)
