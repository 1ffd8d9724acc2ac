"""Writes to the corpus: import, export, vector indexes, embeddings and curation.

Every change of a ``published`` flag goes through :func:`set_works_published` or
:func:`set_sentences_published`, which keep the embeddings' ``searchable`` copy and the works'
published sentence counts in step; search relies on both.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from tqdm import tqdm

from apps.corpus import selectors
from apps.corpus.importers.pipeline import (
    CorpusImport,
    ImportSummary,
    refresh_published_counts,
    upsert_vectors,
)
from apps.corpus.models import Creator, Sentence, SentenceEmbedding, Topic, Work, WorkImage

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
MAX_INDEX_DIMENSIONS = 4000  # pgvector's limit for HNSW over halfvec
MAX_INDEX_BUILD_MB = 6144  # 3.1 M rows of halfvec(512) need about 5 GB; the machine has 24
_MODEL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

# Column names of sentences.json's per-model flags in the public dataset.
EMBEDDING_FLAG_NAMES = {"clip": "CLIP", "paintingclip": "PaintingCLIP"}


def import_corpus(
    roots: Sequence[Path],
    *,
    batch_works: int = 50,
    chunk_rows: int = 20_000,
    progress: bool = False,
) -> ImportSummary:
    """Import an ArteFact source (one or more folders); see apps.corpus.importers.pipeline.

    Raises :class:`CorpusSourceError` for bad input, before anything is written.
    """
    return CorpusImport(
        roots,
        model_keys=selectors.model_keys(),
        batch_works=batch_works,
        chunk_rows=chunk_rows,
        progress=progress,
    ).run()


def _index_name(model_key: str, dim: int) -> str:
    return f"corpus_embedding_hnsw_{model_key}_{dim}"


def _check_model_key(model_key: str) -> None:
    # The key is spliced into index DDL and predicates: allow identifiers only.
    if not _MODEL_KEY.match(model_key):
        raise ValueError(f"model key {model_key!r} must match {_MODEL_KEY.pattern}")


def _vector_indexes(model_key: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
            [SentenceEmbedding._meta.db_table, f"corpus_embedding_hnsw_{model_key}_%"],
        )
        return [row[0] for row in cursor.fetchall()]


def drop_vector_index(model_key: str) -> None:
    """Drop a model's HNSW index (before a bulk load; rebuilt by :func:`ensure_vector_index`)."""
    _check_model_key(model_key)
    with connection.cursor() as cursor:
        for name in _vector_indexes(model_key):
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def drop_other_vector_indexes(model_key: str, dim: int) -> None:
    """Drop a model's indexes over another dimension before ``dim``-sized vectors are written.

    A partial index casts every row of its model to ``halfvec(D)``, so an index left from a
    model of another size (the demo model replaced by a real one, say) would refuse the
    inserts; the rows it indexed are gone or being replaced, so it is stale.
    """
    _check_model_key(model_key)
    keep = _index_name(model_key, dim)
    with connection.cursor() as cursor:
        for name in _vector_indexes(model_key):
            if name != keep:
                cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def ensure_vector_index(model_key: str, dim: int, *, progress: bool = False) -> bool:
    """Create the partial HNSW cosine index of one model's ``halfvec(dim)`` rows if missing.

    Indexes of the same model with another dimension are dropped (the model changed size).
    Returns True when an index was built.
    """
    _check_model_key(model_key)
    if not 1 <= dim <= MAX_INDEX_DIMENSIONS:
        raise ValueError(f"{dim} dimensions: HNSW over halfvec takes 1 to {MAX_INDEX_DIMENSIONS}")
    name = _index_name(model_key, dim)
    existing = _vector_indexes(model_key)
    if name in existing:
        return False
    table = SentenceEmbedding._meta.db_table
    with connection.cursor() as cursor:
        for other in existing:
            cursor.execute(f'DROP INDEX IF EXISTS "{other}"')
        if progress:
            print(f"building HNSW index {name} …", flush=True)
        # The build is fast only while the whole graph fits in maintenance_work_mem: size it
        # to the rows (about dim*2 bytes of vector plus ~300 of graph and tuple per row).
        cursor.execute(f"SELECT count(*) FROM {table} WHERE model = %s", [model_key])
        rows = cursor.fetchone()[0]
        megabytes = min(MAX_INDEX_BUILD_MB, max(64, rows * (dim * 2 + 300) * 13 // 10 >> 20))
        cursor.execute(f"SET maintenance_work_mem = '{megabytes}MB'")
        if connection.in_atomic_block:
            # Deferred foreign-key checks of rows written earlier in this transaction would
            # block CREATE INDEX ("pending trigger events"): run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            f'CREATE INDEX "{name}" ON {table} USING hnsw'
            f" ((embedding::halfvec({dim})) halfvec_cosine_ops)"
            f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
            f" WHERE model = '{model_key}'"
        )
        cursor.execute(f"ANALYZE {table}")
        cursor.execute("RESET maintenance_work_mem")
        if connection.in_atomic_block:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return True


def store_embeddings(model_key: str, sentence_ids: Sequence[str], vectors: np.ndarray) -> int:
    """Store one model's vectors for existing sentences (upsert); returns rows written.

    The HNSW index of the model is created on the first call (so that it exists whatever
    order the batches come in); later rows join it as they are inserted.
    """
    _check_model_key(model_key)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(sentence_ids):
        raise ValueError(f"expected {len(sentence_ids)} x D vectors, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError("vectors hold NaN or infinite values")
    held = selectors.embedding_dimension(model_key)
    if held is not None and held != vectors.shape[1]:
        raise ValueError(
            f"{vectors.shape[1]}-dimensional vectors, but {model_key!r} embeddings have {held}"
        )
    drop_other_vector_indexes(model_key, vectors.shape[1])
    with transaction.atomic(), connection.cursor() as cursor:
        written = upsert_vectors(cursor, model_key, list(sentence_ids), vectors)
    ensure_vector_index(model_key, vectors.shape[1])
    return written


def set_works_published(work_ids: Iterable[str], published: bool) -> int:
    """Publish or unpublish works; their sentences' embeddings follow. Returns works changed."""
    work_ids = list(work_ids)
    with transaction.atomic():
        changed = Work.objects.filter(id__in=work_ids).exclude(published=published)
        changed_ids = list(changed.values_list("id", flat=True))
        Work.objects.filter(id__in=changed_ids).update(published=published)
        _sync_searchable(
            "e.work_id = ANY(%s)",
            [changed_ids],
        )
    return len(changed_ids)


def set_sentences_published(sentence_ids: Iterable[str], published: bool) -> int:
    """Publish or unpublish single sentences; returns sentences changed."""
    sentence_ids = list(sentence_ids)
    with transaction.atomic():
        changed = Sentence.objects.filter(id__in=sentence_ids).exclude(published=published)
        rows = list(changed.values_list("id", "work_id"))
        Sentence.objects.filter(id__in=[sid for sid, _ in rows]).update(published=published)
        _sync_searchable("e.sentence_id = ANY(%s)", [[sid for sid, _ in rows]])
        refresh_published_counts({work_id for _, work_id in rows})
    return len(rows)


def _sync_searchable(where: str, params: list[Any]) -> None:
    embedding, sentence, work = (
        SentenceEmbedding._meta.db_table,
        Sentence._meta.db_table,
        Work._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {embedding} e SET searchable = s.published AND w.published"
            f" FROM {sentence} s JOIN {work} w ON w.id = s.work_id"
            f" WHERE s.id = e.sentence_id AND {where}"
            f" AND e.searchable IS DISTINCT FROM (s.published AND w.published)",
            params,
        )


# -- export ------------------------------------------------------------------------------------


def export_corpus(dest: Path, *, published_only: bool = False, progress: bool = False) -> dict:
    """Write the corpus in the ArteFact layout under `dest`; returns counts of what was written.

    ``json_info/`` gets works, creators, topics, topic_names and sentences.json;
    ``marker_output/<W>/`` each work's source Markdown and images; the top, per model,
    ``<model>_embeddings.safetensors`` (float32, as published) and its sentence id list.
    Big files are written as streams, never built in memory.
    """
    dest = Path(dest)
    json_dir = dest / "json_info"
    json_dir.mkdir(parents=True, exist_ok=True)
    works = Work.objects.defer("markdown").prefetch_related("creators", "topics")
    sentences = Sentence.objects.all()
    if published_only:
        works = works.filter(published=True)
        sentences = sentences.filter(published=True, work__published=True)
    work_ids = set()
    works_json: dict[str, Any] = {}
    creators_json: dict[str, list[str]] = {c.slug: [] for c in Creator.objects.all()}
    topics_json: dict[str, list[str]] = {t.id: [] for t in Topic.objects.all()}
    for work in works:
        work_ids.add(work.id)
        works_json[work.id] = {
            "Artist": work.artist,
            "Link": work.link,
            "Number of Sentences": work.source_sentence_count,
            "DOI": work.doi,
            "ImageIDs": work.image_ids,
            "TopicIDs": [topic.id for topic in work.topics.all()],
            "Relevance": work.relevance,
            "Author_Name": work.author,
            "Work_Title": work.title,
            "Year": work.year,
            "BibTeX": work.bibtex,
        }
        for creator in work.creators.all():
            creators_json[creator.slug].append(work.id)
        for topic in work.topics.all():
            topics_json[topic.id].append(work.id)
    topics_json = {topic_id: ids for topic_id, ids in topics_json.items() if ids}
    _write_json(json_dir / "works.json", works_json)
    _write_json(json_dir / "creators.json", creators_json)
    _write_json(json_dir / "topics.json", topics_json)
    _write_json(
        json_dir / "topic_names.json",
        dict(Topic.objects.filter(id__in=topics_json).exclude(name=None).values_list("id", "name")),
    )

    models = [
        m for m in selectors.model_keys() if SentenceEmbedding.objects.filter(model=m).exists()
    ]
    counts = {"works": len(works_json), "sentences": 0}
    counts["sentences"] = _export_sentences(json_dir / "sentences.json", sentences, models)
    for work in Work.objects.filter(id__in=work_ids).exclude(markdown="").only("id", "markdown"):
        folder = dest / "marker_output" / work.id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{work.id}.md").write_text(work.markdown, encoding="utf-8")
    for image in WorkImage.objects.filter(work_id__in=work_ids):
        folder = dest / "marker_output" / image.work_id
        folder.mkdir(parents=True, exist_ok=True)
        with (
            default_storage.open(image.image.name, "rb") as source,
            (folder / image.name).open("wb") as target,
        ):
            shutil.copyfileobj(source, target)
    for model in models:
        counts[f"embeddings[{model}]"] = _export_embeddings(
            dest, model, published_only=published_only, progress=progress
        )
    return counts


def _write_json(path: Path, data: Any) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)


def _export_sentences(path: Path, sentences: Any, models: list[str]) -> int:
    flags = {m: f"Has {EMBEDDING_FLAG_NAMES.get(m, m)} Embedding" for m in models}
    queryset = sentences.order_by("work_id", "position").annotate(
        **{
            f"has_{m}": Exists(SentenceEmbedding.objects.filter(model=m, sentence=OuterRef("pk")))
            for m in models
        }
    )
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        handle.write("{")
        for row in queryset.values_list("id", "text", *[f"has_{m}" for m in models]).iterator(
            chunk_size=10_000
        ):
            entry = {"English Original": row[1]}
            entry.update({flags[m]: bool(v) for m, v in zip(models, row[2:], strict=True)})
            handle.write("," if count else "")
            handle.write(f"\n{json.dumps(row[0])}: {json.dumps(entry, ensure_ascii=False)}")
            count += 1
        handle.write("\n}\n")
    return count


def _export_embeddings(dest: Path, model: str, *, published_only: bool, progress: bool) -> int:
    """Stream one model's vectors into a safetensors file (header, then rows) and its id list."""
    table = SentenceEmbedding._meta.db_table
    where = "model = %s" + (" AND searchable" if published_only else "")
    dim = selectors.embedding_dimension(model)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", [model])
        rows = cursor.fetchone()[0]
        header = json.dumps(
            {
                "embeddings": {
                    "dtype": "F32",
                    "shape": [rows, dim],
                    "data_offsets": [0, rows * dim * 4],
                }
            },
            separators=(",", ":"),
        ).encode()
        header += b" " * (-len(header) % 8)  # safetensors aligns the data to 8 bytes
        tensor_path = dest / f"{model}_embeddings.safetensors"
        ids_path = dest / f"{model}_embeddings_sentence_ids.json"
        written = 0
        with (
            tensor_path.open("wb") as tensor,
            ids_path.open("w", encoding="utf-8") as ids,
            tqdm(total=rows, desc=f"export {model}", disable=not progress) as bar,
            cursor.copy(
                f"COPY (SELECT sentence_id, embedding FROM {table} WHERE {where}"
                f" ORDER BY sentence_id) TO STDOUT (FORMAT BINARY)",
                [model],
            ) as copy,
        ):
            tensor.write(struct.pack("<Q", len(header)) + header)
            ids.write("[")
            copy.set_types(["text", "bytea"])  # the halfvec's binary form, as raw bytes
            for sentence_id, payload in copy.rows():
                values = np.frombuffer(payload, dtype=">f2", offset=4).astype("<f4")
                tensor.write(values.tobytes())
                ids.write(("," if written else "") + json.dumps(sentence_id))
                written += 1
                bar.update()
            ids.write("]\n")
    if written != rows:
        raise RuntimeError(
            f"{model}: {rows} rows counted but {written} exported (concurrent writes?)"
        )
    return written
