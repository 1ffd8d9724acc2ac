"""Vector storage: the embedding rows, their HNSW indexes, and the copies search reads beside them.

Two tables hold vectors: one row per sentence per model (``SentenceEmbedding``, the table
:data:`SENTENCES`) and one per figure image per model (``FigureEmbedding``, :data:`FIGURES`).
They follow the same rules, so the functions below take the table (`table=`, sentences when
not given) rather than being written twice.

Sentence vectors are written two ways, by the importer (a dataset's safetensors, in bulk) and by the
services (vectors the engine computed), and both must keep the same rules: one dimension per
model key, one partial HNSW index per model over ``halfvec(dim)``, rows that are equal left
alone, and the denormalised copies that search relies on (each embedding's ``searchable``
flag, each work's published sentence count) in step with the published flags. The rules live
here, once, so that neither writer depends on the other.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from django.db import connection, transaction

from apps.corpus.importers.copy import copy_rows, halfvec_payloads
from apps.corpus.models import FigureEmbedding, Sentence, SentenceEmbedding, Work, WorkImage

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
MAX_INDEX_DIMENSIONS = 4000  # pgvector's limit for HNSW over halfvec
MAX_INDEX_BUILD_MB = 6144  # 3.1 M rows of halfvec(512) need about 5 GB; the machine has 24
STAGE_VECTORS = "corpus_stage_vectors"
"""Temporary table of this connection that :func:`upsert_vectors` loads a batch into."""
STAGE_FIGURES = "corpus_stage_figure_vectors"
"""The same for :func:`store_figure_embeddings`."""
_MODEL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class VectorTable:
    """A table of (model, item) vectors: its Django model, the column naming the item, and the
    prefix of its HNSW index names (``<prefix>_<model key>_<dim>``)."""

    model: type
    item_column: str
    index_prefix: str

    @property
    def name(self) -> str:
        return self.model._meta.db_table


SENTENCES = VectorTable(SentenceEmbedding, "sentence_id", "corpus_embedding_hnsw")
FIGURES = VectorTable(FigureEmbedding, "figure_id", "corpus_figure_hnsw")


def _table(model: type) -> str:
    return model._meta.db_table


def _index_name(model_key: str, dim: int, table: VectorTable = SENTENCES) -> str:
    return f"{table.index_prefix}_{model_key}_{dim}"


def _check_model_key(model_key: str) -> None:
    # The key is spliced into index DDL and predicates: allow identifiers only.
    if not _MODEL_KEY.match(model_key):
        raise ValueError(f"model key {model_key!r} must match {_MODEL_KEY.pattern}")


def _vector_indexes(model_key: str, table: VectorTable = SENTENCES) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
            [table.name, f"{table.index_prefix}_{model_key}_%"],
        )
        return [row[0] for row in cursor.fetchall()]


def get_stored_dimension(model_key: str, table: VectorTable = SENTENCES) -> int | None:
    """The dimension of the stored vectors of one model, or None if it has none.

    Every vector of a model has this dimension: its index casts each row to ``halfvec(dim)``.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT vector_dims(embedding) FROM {table.name} WHERE model = %s LIMIT 1",
            [model_key],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def get_vector_index_rows(model_key: str, dim: int, table: VectorTable = SENTENCES) -> float | None:
    """How many rows the model's HNSW index holds, as PostgreSQL last counted them (set when
    the index is built, kept up by vacuum), or None when there is no index. A catalog read:
    cheap enough for every search to choose its plan by."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE relname = %s AND relkind = 'i'",
            [_index_name(model_key, dim, table)],
        )
        row = cursor.fetchone()
    return None if row is None else max(0.0, float(row[0]))


def drop_vector_index(model_key: str, table: VectorTable = SENTENCES) -> None:
    """Drop a model's HNSW index (before a bulk load; rebuilt by :func:`ensure_vector_index`)."""
    _check_model_key(model_key)
    with connection.cursor() as cursor:
        for name in _vector_indexes(model_key, table):
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def drop_other_vector_indexes(model_key: str, dim: int, table: VectorTable = SENTENCES) -> None:
    """Drop a model's indexes over another dimension before ``dim``-sized vectors are written.

    A partial index casts every row of its model to ``halfvec(D)``, so an index left from a
    model of another size (the demo model replaced by a real one, say) would refuse the
    inserts; the rows it indexed are gone or being replaced, so it is stale.
    """
    _check_model_key(model_key)
    keep = _index_name(model_key, dim, table)
    with connection.cursor() as cursor:
        for name in _vector_indexes(model_key, table):
            if name != keep:
                cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def ensure_vector_index(
    model_key: str, dim: int, *, progress: bool = False, table: VectorTable = SENTENCES
) -> bool:
    """Create the partial HNSW cosine index of one model's ``halfvec(dim)`` rows if missing.

    Indexes of the same model with another dimension are dropped (the model changed size).
    Returns True when an index was built.
    """
    _check_model_key(model_key)
    if not 1 <= dim <= MAX_INDEX_DIMENSIONS:
        raise ValueError(f"{dim} dimensions: HNSW over halfvec takes 1 to {MAX_INDEX_DIMENSIONS}")
    name = _index_name(model_key, dim, table)
    existing = _vector_indexes(model_key, table)
    if name in existing:
        return False
    table_name = table.name
    with connection.cursor() as cursor:
        for other in existing:
            cursor.execute(f'DROP INDEX IF EXISTS "{other}"')
        if progress:
            print(f"building HNSW index {name} …", flush=True)
        # The build is fast only while the whole graph fits in maintenance_work_mem: size it
        # to the rows (about dim*2 bytes of vector plus ~300 of graph and tuple per row).
        cursor.execute(f"SELECT count(*) FROM {table_name} WHERE model = %s", [model_key])
        rows = cursor.fetchone()[0]
        megabytes = min(MAX_INDEX_BUILD_MB, max(64, rows * (dim * 2 + 300) * 13 // 10 >> 20))
        cursor.execute(f"SET maintenance_work_mem = '{megabytes}MB'")
        if connection.in_atomic_block:
            # Deferred foreign-key checks of rows written earlier in this transaction would
            # block CREATE INDEX ("pending trigger events"): run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            f'CREATE INDEX "{name}" ON {table_name} USING hnsw'
            f" ((embedding::halfvec({dim})) halfvec_cosine_ops)"
            f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
            f" WHERE model = '{model_key}'"
        )
        cursor.execute(f"ANALYZE {table_name}")
        cursor.execute("RESET maintenance_work_mem")
        if connection.in_atomic_block:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return True


def upsert_vectors(cursor: Any, model: str, sentence_ids: list[str], block: np.ndarray) -> int:
    """Insert or update one model's vectors for existing sentences; returns rows written.

    Rows whose stored vector is already equal are left alone, so repeating a load writes
    nothing. ``work_id`` and ``searchable`` are copied from the sentence and its work.
    """
    embedding = _table(SentenceEmbedding)
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_VECTORS}"
        f" (sentence_id text NOT NULL, embedding halfvec)"
    )
    cursor.execute(f"TRUNCATE {STAGE_VECTORS}")
    copy_rows(
        cursor,
        STAGE_VECTORS,
        [("sentence_id", "text"), ("embedding", "halfvec")],
        zip(sentence_ids, halfvec_payloads(block), strict=True),
    )
    cursor.execute(
        f"INSERT INTO {embedding} AS e (model, sentence_id, work_id, searchable, embedding)"
        f" SELECT %s, v.sentence_id, s.work_id, s.published AND w.published, v.embedding"
        f" FROM {STAGE_VECTORS} v"
        f" JOIN {_table(Sentence)} s ON s.id = v.sentence_id"
        f" JOIN {_table(Work)} w ON w.id = s.work_id"
        f" ON CONFLICT (model, sentence_id) DO UPDATE SET embedding = EXCLUDED.embedding"
        f" WHERE e.embedding IS DISTINCT FROM EXCLUDED.embedding",
        [model],
    )
    return cursor.rowcount


def store_embeddings(model_key: str, sentence_ids: Sequence[str], vectors: np.ndarray) -> int:
    """Store one model's vectors for existing sentences (upsert); returns rows written.

    The HNSW index of the model is created on the first call (so that it exists whatever
    order the batches come in); later rows join it as they are inserted.
    """
    vectors = _checked_vectors(model_key, len(sentence_ids), vectors, SENTENCES)
    with transaction.atomic(), connection.cursor() as cursor:
        written = upsert_vectors(cursor, model_key, list(sentence_ids), vectors)
    ensure_vector_index(model_key, vectors.shape[1])
    return written


def store_figure_embeddings(model_key: str, figure_ids: Sequence[int], vectors: np.ndarray) -> int:
    """Store one model's vectors [N, D] for existing figures (:class:`WorkImage` ids, upsert);
    returns rows written. Same rules as :func:`store_embeddings`: one dimension per model, equal
    rows left alone, the model's figure index created on the first call; ``work_id`` and
    ``searchable`` (the work is published) copied from the figure's work."""
    vectors = _checked_vectors(model_key, len(figure_ids), vectors, FIGURES)
    embedding = FIGURES.name
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_FIGURES}"
            f" (figure_id int4 NOT NULL, embedding halfvec)"
        )
        cursor.execute(f"TRUNCATE {STAGE_FIGURES}")
        copy_rows(
            cursor,
            STAGE_FIGURES,
            [("figure_id", "int4"), ("embedding", "halfvec")],
            zip([int(i) for i in figure_ids], halfvec_payloads(vectors), strict=True),
        )
        cursor.execute(
            f"INSERT INTO {embedding} AS e (model, figure_id, work_id, searchable, embedding)"
            f" SELECT %s, v.figure_id, f.work_id, w.published, v.embedding"
            f" FROM {STAGE_FIGURES} v"
            f" JOIN {_table(WorkImage)} f ON f.id = v.figure_id"
            f" JOIN {_table(Work)} w ON w.id = f.work_id"
            f" ON CONFLICT (model, figure_id) DO UPDATE SET embedding = EXCLUDED.embedding"
            f" WHERE e.embedding IS DISTINCT FROM EXCLUDED.embedding",
            [model_key],
        )
        written = cursor.rowcount
    ensure_vector_index(model_key, vectors.shape[1], table=FIGURES)
    return written


def _checked_vectors(
    model_key: str, rows: int, vectors: np.ndarray, table: VectorTable
) -> np.ndarray:
    """`vectors` as float32 [rows, D], refused (ValueError) unless finite and of the model's
    stored dimension in `table`; indexes of the model over another dimension are dropped."""
    _check_model_key(model_key)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != rows:
        raise ValueError(f"expected {rows} x D vectors, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError("vectors hold NaN or infinite values")
    held = get_stored_dimension(model_key, table)
    if held is not None and held != vectors.shape[1]:
        raise ValueError(
            f"{vectors.shape[1]}-dimensional vectors, but {model_key!r} embeddings have {held}"
        )
    drop_other_vector_indexes(model_key, vectors.shape[1], table)
    return vectors


def sync_searchable(column: Literal["work_id", "sentence_id"], ids: Collection[str]) -> None:
    """Copy the published flags of sentence and work into ``searchable`` of these embeddings.

    `column` says whether `ids` are works or sentences; for works, the figure embeddings of
    those works follow too. Search filters on the copy alone, so every change of a published
    flag must be followed by this (in the same transaction).
    """
    if column not in ("work_id", "sentence_id"):
        raise ValueError(f"column {column!r} is neither work_id nor sentence_id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(SentenceEmbedding)} e SET searchable = s.published AND w.published"
            f" FROM {_table(Sentence)} s JOIN {_table(Work)} w ON w.id = s.work_id"
            f" WHERE s.id = e.sentence_id AND e.{column} = ANY(%s)"
            f" AND e.searchable IS DISTINCT FROM (s.published AND w.published)",
            [list(ids)],
        )
        if column == "work_id":
            # A figure is searchable while its work is published.
            cursor.execute(
                f"UPDATE {FIGURES.name} e SET searchable = w.published FROM {_table(Work)} w"
                f" WHERE w.id = e.work_id AND e.work_id = ANY(%s)"
                f" AND e.searchable IS DISTINCT FROM w.published",
                [list(ids)],
            )


def refresh_published_counts(work_ids: Collection[str]) -> None:
    """Recount the published sentences of `work_ids` (the search's selectivity estimate)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(Work)} w SET published_sentence_count ="
            f" (SELECT count(*) FROM {_table(Sentence)} s"
            f"  WHERE s.work_id = w.id AND s.published)"
            f" WHERE w.id = ANY(%s)",
            [list(work_ids)],
        )
