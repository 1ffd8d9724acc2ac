"""The export of a corpus in the ArteFact layout, the inverse of the import beside it.

Importing what :func:`export_corpus` writes into an empty corpus reproduces the corpus (rows
and vectors; curated display names excepted, which the layout has no place for), so both ends
of the format live in this package: ``artefact_layout`` reads it, this module writes it.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Exists, OuterRef
from tqdm import tqdm

from apps.corpus.models import Creator, Sentence, SentenceEmbedding, Topic, Work, WorkImage
from apps.corpus.vectors import get_stored_dimension
from apps.engine.config import dataset_flag


def export_corpus(
    dest: Path,
    *,
    model_keys: Iterable[str],
    published_only: bool = False,
    progress: bool = False,
) -> dict:
    """Write the corpus in the ArteFact layout under `dest`; returns counts of what was written.

    ``json_info/`` gets works, creators, topics, topic_names and sentences.json;
    ``marker_output/<W>/`` each work's source Markdown and images; the top, per model of
    `model_keys` that has vectors, ``<model>_embeddings.safetensors`` (float32, as published)
    and its sentence id list. sentences.json names each model's flag column as the model table
    does (`apps.engine.config.dataset_flag`). Big files are written as
    streams, never built in memory.
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

    models = [m for m in model_keys if SentenceEmbedding.objects.filter(model=m).exists()]
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
    flags = {m: dataset_flag(m) for m in models}
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
    dim = get_stored_dimension(model)
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
