"""search_sentences and the context selectors against real pgvector."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.corpus import selectors, services
from apps.corpus.models import Sentence, Work
from apps.corpus.vectors import refresh_published_counts, store_embeddings

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(corpus_dir):
    """The small corpus imported; returns (sentence ids in file order, clip vectors)."""
    root, vectors = corpus_dir()
    services.import_corpus([root])
    ids = list(Sentence.objects.order_by("id").values_list("id", flat=True))
    return ids, vectors["clip"]


def exact_ranking(query, ids, vectors, allowed=None):
    """Numpy's cosine of the query with the stored (float16) vectors, best first."""
    stored = vectors.astype(np.float16).astype(np.float32)
    scores = stored @ query / (np.linalg.norm(stored, axis=1) * np.linalg.norm(query))
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))
    return [(ids[i], float(scores[i])) for i in order if allowed is None or ids[i] in allowed]


def test_unfiltered_search_ranks_by_exact_cosine(corpus):
    ids, vectors = corpus
    query = np.random.default_rng(5).standard_normal(8).astype(np.float32)
    hits = selectors.search_sentences(query, "clip", k=10)
    expected = exact_ranking(query, ids, vectors)[:10]
    assert [hit.sentence_id for hit in hits] == [sid for sid, _ in expected]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-5)
    assert [hit.rank for hit in hits] == list(range(1, 11))
    assert hits[0].work_id == hits[0].sentence_id.split("_s")[0]
    assert hits[0].text == Sentence.objects.get(id=hits[0].sentence_id).text


def test_a_sentence_vector_finds_its_sentence_first(corpus):
    ids, vectors = corpus
    hit = selectors.search_sentences(vectors[17], "clip", k=1)[0]
    assert hit.sentence_id == ids[17]
    assert hit.score == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("exact_limit", [10**9, 0], ids=["exact plan", "hnsw plan"])
@pytest.mark.parametrize(
    ("filters", "works"),
    [
        ({"topics": ["T3"]}, {"W100"}),
        ({"topics": ["T2", "T3"]}, {"W100", "W101", "W103", "W105"}),
        ({"creators": ["anna_artist"]}, {"W100", "W103"}),
        ({"creators": ["anna_artist", "carla_maker"]}, {"W100", "W102", "W103", "W105"}),
        ({"topics": ["T1"], "creators": ["bruno_painter"]}, {"W104"}),
        ({"topics": ["T3"], "creators": ["bruno_painter"]}, set()),
        ({"works": ["W101", "W102"]}, {"W101", "W102"}),
        ({"topics": ["T-unknown"]}, set()),
    ],
)
def test_filters_return_min_k_matching_ranked_exactly(
    corpus, monkeypatch, filters, works, exact_limit
):
    monkeypatch.setattr(selectors, "EXACT_SEARCH_MAX_ROWS", exact_limit)
    ids, vectors = corpus
    query = np.random.default_rng(7).standard_normal(8).astype(np.float32)
    allowed = {sid for sid in ids if sid.split("_s")[0] in works}
    for k in (3, 25):
        hits = selectors.search_sentences(query, "clip", k=k, **filters)
        expected = exact_ranking(query, ids, vectors, allowed)[:k]
        assert len(hits) == min(k, len(allowed))
        assert [h.sentence_id for h in hits] == [sid for sid, _ in expected]
        np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-5)


def test_a_scan_cut_short_falls_back_to_exact_search(monkeypatch):
    """3,000 vectors near the query in W1, 10 far away in W2: filtered to W2, the HNSW scan
    gives up after hnsw.max_scan_tuples and the exact plan still returns all 10."""
    rng = np.random.default_rng(3)
    Work.objects.bulk_create([Work(id="W1", title="near"), Work(id="W2", title="far")])
    rows = [("W1", 2990), ("W2", 10)]
    Sentence.objects.bulk_create(
        Sentence(id=f"{w}_s{n:04d}", work_id=w, position=n, text=f"{w} {n} some words")
        for w, count in rows
        for n in range(1, count + 1)
    )
    refresh_published_counts(["W1", "W2"])
    centre = rng.standard_normal(16)
    near = centre + 0.3 * rng.standard_normal((2990, 16))
    far = -centre + 0.3 * rng.standard_normal((10, 16))
    ids = [f"{w}_s{n:04d}" for w, count in rows for n in range(1, count + 1)]
    store_embeddings("clip", ids, np.vstack([near, far]))

    monkeypatch.setattr(selectors, "EXACT_SEARCH_MAX_ROWS", 0)
    monkeypatch.setattr(selectors, "HNSW_MAX_SCAN_TUPLES", 200)
    with connection.cursor() as cursor:  # make sure the planner takes the HNSW index
        cursor.execute("SET enable_seqscan = off; SET enable_sort = off; ANALYZE")
    with CaptureQueriesContext(connection) as queries:
        hits = selectors.search_sentences(centre, "clip", k=25, works=["W2"])
    plans = [q["sql"] for q in queries if "corpus_sentenceembedding" in q["sql"]]
    assert [("halfvec(16) <=>" in sql, "ORDER BY score DESC" in sql) for sql in plans] == [
        (True, False),
        (False, True),
    ]
    assert sorted(h.sentence_id for h in hits) == ids[-10:]


def test_unpublished_works_and_sentences_never_appear(corpus):
    _, vectors = corpus
    query = vectors[0]
    assert len(selectors.search_sentences(query, "clip", k=100)) == 36

    assert services.set_works_published(["W100"], False) == 1
    assert services.set_sentences_published(["W101_s0001"], False) == 1
    for filters in ({}, {"topics": ["T1", "T2"]}, {"works": ["W100", "W101"]}):
        hits = selectors.search_sentences(query, "clip", k=100, **filters)
        assert "W100" not in {h.work_id for h in hits}
        assert "W101_s0001" not in {h.sentence_id for h in hits}
    assert len(selectors.search_sentences(query, "clip", k=100)) == 29
    assert len(selectors.search_sentences(query, "clip", k=100, works=["W101"])) == 5
    assert selectors.search_sentences(query, "clip", works=["W100"]) == []

    services.set_works_published(["W100"], True)
    services.set_sentences_published(["W101_s0001"], True)
    assert len(selectors.search_sentences(query, "clip", k=100)) == 36


def test_vector_index_is_partial_per_model_with_the_data_dimension(corpus):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE indexname LIKE 'corpus_embedding_hnsw%'"
        )
        indexes = dict(cursor.fetchall())
    assert list(indexes) == ["corpus_embedding_hnsw_clip_8"]
    definition = indexes["corpus_embedding_hnsw_clip_8"]
    assert "USING hnsw (((embedding)::halfvec(8)) halfvec_cosine_ops)" in definition
    assert "WHERE ((model)::text = 'clip'::text)" in definition


def test_bad_queries_are_refused(corpus):
    with pytest.raises(ValueError, match="unknown model key"):
        selectors.search_sentences(np.ones(8), "nope")
    with pytest.raises(ValueError, match="non-zero 1-D"):
        selectors.search_sentences(np.zeros(8), "clip")
    assert selectors.search_sentences(np.ones(8), "clip", k=0) == []


def test_sentence_context_and_work_details(corpus):
    context = selectors.get_sentence_context("W100_s0004", neighbours=2)
    assert context.sentence.text in context.paragraph
    assert "paragraph 2" in context.paragraph
    assert [s.id for s in context.before] == ["W100_s0002", "W100_s0003"]
    assert [s.id for s in context.after] == ["W100_s0005", "W100_s0006"]

    services.set_sentences_published(["W100_s0003"], False)
    context = selectors.get_sentence_context("W100_s0004", neighbours=2)
    assert [s.id for s in context.before] == ["W100_s0001", "W100_s0002"]
    assert selectors.get_sentence_context("W100_s0003") is None
    assert selectors.get_sentence_context("W100_s0003", include_unpublished=True) is not None

    details = selectors.get_work_details("W100")
    assert details.work.display_title == "On Painting 0"
    assert [c.slug for c in details.creators] == ["anna_artist"]
    assert sorted(t.id for t in details.topics) == ["T1", "T3"]
    assert [i.name for i in details.images] == ["fig_0.png"]
    assert details.sentence_count == 5
    services.set_works_published(["W100"], False)
    assert selectors.get_work_details("W100") is None
