"""The ArteFact dataset layout: where its files are and what their entries hold.

A source is one or more folders (the three Hugging Face datasets download into three) holding
``json_info/*.json`` or the JSON files at the top, ``<W>.md`` files with their images anywhere
below, and per model ``<model>_embeddings.safetensors`` with ``<model>_embeddings_sentence_ids
.json`` (or ``<model>_sentence_ids.json``). Everything here reads and checks; nothing writes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apps.corpus.importers import CorpusSourceError
from apps.corpus.importers.jsonstream import iter_array, iter_object, load_small

JSON_FILES = ("works", "creators", "topics", "topic_names", "sentences")
SENTENCE_ID = re.compile(r"^(?P<work>.+)_s(?P<position>\d+)$")
TENSOR_NAME = "embeddings"
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp"})
_EMBEDDINGS_FILE = re.compile(r"^(?P<model>.+)_embeddings\.safetensors$")


@dataclass(frozen=True)
class EmbeddingSource:
    """One model's vectors: a safetensors file and the JSON list of sentence ids of its rows."""

    model: str
    tensor_path: Path
    ids_path: Path


@dataclass
class Layout:
    """The files found in a source."""

    json_files: dict[str, Path]
    markdown: dict[str, Path]
    embeddings: list[EmbeddingSource]
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkRecord:
    """One entry of works.json, checked and normalised."""

    id: str
    title: str
    author: str
    year: str
    doi: str
    link: str
    bibtex: str
    relevance: float | None
    artist: str
    image_ids: list[Any]
    source_sentence_count: int
    topic_ids: list[str]


@dataclass
class Metadata:
    """works.json, creators.json, topics.json and topic_names.json, cross-checked."""

    works: dict[str, WorkRecord]
    creators: dict[str, list[str]]
    topics: dict[str, list[str]]
    topic_names: dict[str, str]
    skipped: list[str] = field(default_factory=list)


def discover(roots: Sequence[Path]) -> Layout:
    """Find the dataset files under `roots`; a root that is not a folder is an error."""
    json_files: dict[str, Path] = {}
    markdown: dict[str, Path] = {}
    embeddings: dict[str, EmbeddingSource] = {}
    skipped: list[str] = []
    for root in roots:
        if not root.is_dir():
            raise CorpusSourceError(f"{root}: not a folder")
        for name in JSON_FILES:
            for candidate in (root / "json_info" / f"{name}.json", root / f"{name}.json"):
                if candidate.is_file() and name not in json_files:
                    json_files[name] = candidate
        for path in sorted(root.rglob("*.md")):
            if path.stem in markdown:
                skipped.append(f"{path}: a second Markdown file for {path.stem}, ignored")
                continue
            markdown[path.stem] = path
        for path in sorted(root.rglob("*_embeddings.safetensors")):
            model = _EMBEDDINGS_FILE.match(path.name).group("model")
            ids = [
                path.with_name(f"{model}_embeddings_sentence_ids.json"),
                path.with_name(f"{model}_sentence_ids.json"),
            ]
            ids_path = next((p for p in ids if p.is_file()), None)
            if ids_path is None:
                raise CorpusSourceError(
                    f"{path.name}: no sentence id list beside it ({ids[0].name} or {ids[1].name})"
                )
            if model in embeddings:
                raise CorpusSourceError(
                    f"{path}: a second embeddings file for model {model!r} "
                    f"(first: {embeddings[model].tensor_path})"
                )
            embeddings[model] = EmbeddingSource(model, path, ids_path)
    if "works" not in json_files:
        where = ", ".join(str(root) for root in roots)
        raise CorpusSourceError(f"no works.json in {where} (looked in json_info/ and the top)")
    return Layout(json_files, markdown, list(embeddings.values()), skipped)


def _text_field(file: str, work_id: str, entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise CorpusSourceError(f"{file}: work {work_id!r}: {key} must be text, not {value!r}")
    return str(value)


def _work_record(work_id: str, entry: Any) -> WorkRecord:
    file = "works.json"
    if not isinstance(entry, dict):
        raise CorpusSourceError(f"{file}: work {work_id!r} must be an object, not {entry!r}")
    relevance = entry.get("Relevance")
    if relevance is not None and (
        isinstance(relevance, bool)
        or not isinstance(relevance, int | float)
        or not math.isfinite(relevance)
    ):
        raise CorpusSourceError(f"{file}: work {work_id!r}: Relevance {relevance!r} is no number")
    count = entry.get("Number of Sentences", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CorpusSourceError(
            f"{file}: work {work_id!r}: Number of Sentences {count!r} is no count"
        )
    topic_ids = entry.get("TopicIDs") or []
    image_ids = entry.get("ImageIDs") or []
    if not isinstance(topic_ids, list) or not all(isinstance(t, str) for t in topic_ids):
        raise CorpusSourceError(f"{file}: work {work_id!r}: TopicIDs must be a list of ids")
    if not isinstance(image_ids, list):
        raise CorpusSourceError(f"{file}: work {work_id!r}: ImageIDs must be a list")
    return WorkRecord(
        id=work_id,
        title=_text_field(file, work_id, entry, "Work_Title"),
        author=_text_field(file, work_id, entry, "Author_Name"),
        year=_text_field(file, work_id, entry, "Year"),
        doi=_text_field(file, work_id, entry, "DOI"),
        link=_text_field(file, work_id, entry, "Link"),
        bibtex=_text_field(file, work_id, entry, "BibTeX"),
        relevance=float(relevance) if relevance is not None else None,
        artist=_text_field(file, work_id, entry, "Artist"),
        image_ids=image_ids,
        source_sentence_count=count,
        topic_ids=topic_ids,
    )


def _id_lists(path: Path, works: dict[str, WorkRecord], owner: str) -> dict[str, list[str]]:
    data = load_small(path)
    if not isinstance(data, dict):
        raise CorpusSourceError(f"{path.name}: must be an object of {owner} → list of work ids")
    for key, work_ids in data.items():
        if not isinstance(work_ids, list) or not all(isinstance(w, str) for w in work_ids):
            raise CorpusSourceError(f"{path.name}: {owner} {key!r} must list work ids")
        unknown = [w for w in work_ids if w not in works]
        if unknown:
            raise CorpusSourceError(
                f"{path.name}: {owner} {key!r} names unknown work {unknown[0]!r} "
                f"(not in works.json)"
            )
    return data


def read_metadata(layout: Layout) -> Metadata:
    """Read and cross-check the small JSON files; topics of works.json join topics.json."""
    raw_works = load_small(layout.json_files["works"])
    if not isinstance(raw_works, dict):
        raise CorpusSourceError("works.json: must be an object of work id → work")
    works = {work_id: _work_record(work_id, entry) for work_id, entry in raw_works.items()}
    creators: dict[str, list[str]] = {}
    topics: dict[str, list[str]] = {}
    topic_names: dict[str, str] = {}
    skipped: list[str] = []
    if "creators" in layout.json_files:
        creators = _id_lists(layout.json_files["creators"], works, "creator")
    if "topics" in layout.json_files:
        topics = _id_lists(layout.json_files["topics"], works, "topic")
    for record in works.values():
        if record.artist and record.artist not in creators:
            creators[record.artist] = []
        for topic_id in record.topic_ids:
            topics.setdefault(topic_id, [])
    if "topic_names" in layout.json_files:
        names = load_small(layout.json_files["topic_names"])
        if not isinstance(names, dict):
            raise CorpusSourceError("topic_names.json: must be an object of topic id → name")
        for topic_id, name in names.items():
            if not isinstance(name, str):
                raise CorpusSourceError(f"topic_names.json: topic {topic_id!r}: name {name!r}")
            if topic_id in topics:
                topic_names[topic_id] = name
            else:
                skipped.append(f"topic_names.json: {topic_id} ({name}) is no topic of a work")
    return Metadata(works, creators, topics, topic_names, skipped)


def work_of_sentence(file: str, sentence_id: Any, works: dict[str, WorkRecord]) -> tuple[str, int]:
    """(work id, position) of a ``W…_s0001`` id; an unknown work or bad id is an error."""
    match = SENTENCE_ID.match(sentence_id) if isinstance(sentence_id, str) else None
    if match is None or int(match.group("position")) < 1:
        raise CorpusSourceError(f"{file}: entry {sentence_id!r} is not a sentence id W…_s0001")
    work_id = match.group("work")
    if work_id not in works:
        raise CorpusSourceError(
            f"{file}: entry {sentence_id!r} names unknown work {work_id!r} (not in works.json)"
        )
    return work_id, int(match.group("position"))


def iter_sentences(path: Path, works: dict[str, WorkRecord]) -> Iterator[tuple[str, str, int, str]]:
    """(sentence id, work id, position, text) of each sentences.json entry, streamed."""
    for sentence_id, entry in iter_object(path):
        work_id, position = work_of_sentence(path.name, sentence_id, works)
        text = entry.get("English Original") if isinstance(entry, dict) else None
        if not isinstance(text, str):
            raise CorpusSourceError(
                f"{path.name}: entry {sentence_id!r} has no text in 'English Original'"
            )
        yield sentence_id, work_id, position, text


def iter_embedding_ids(source: EmbeddingSource) -> Iterator[str]:
    """The sentence ids of an embeddings file's rows, in row order, streamed."""
    for index, sentence_id in enumerate(iter_array(source.ids_path)):
        if not isinstance(sentence_id, str):
            raise CorpusSourceError(
                f"{source.ids_path.name}: item {index} is {sentence_id!r}, not a sentence id"
            )
        yield sentence_id


_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "F64": np.dtype("<f8")}
_BF16 = "BF16"
_MAX_HEADER = 100 << 20


@dataclass(frozen=True)
class _TensorLayout:
    """Where the ``embeddings`` tensor's rows lie in a safetensors file."""

    rows: int
    dim: int
    dtype: str
    data_start: int

    @property
    def row_bytes(self) -> int:
        return self.dim * (2 if self.dtype == _BF16 else _DTYPES[self.dtype].itemsize)


def _tensor_layout(source: EmbeddingSource) -> _TensorLayout:
    """Read the safetensors header (8-byte length, JSON) and check the tensor against the file.

    The file is read with plain reads, not memory-mapped: mapped pages count towards the
    process's resident memory, and a 6.4 GB file would be resident by the end of a pass.
    """
    name = source.tensor_path.name
    try:
        with source.tensor_path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size <= _MAX_HEADER:
                raise CorpusSourceError(f"{name}: not a safetensors file (header size {size})")
            header = json.loads(handle.read(size))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorpusSourceError(f"{name}: not a safetensors file (unreadable header)") from None
    entry = header.get(TENSOR_NAME) if isinstance(header, dict) else None
    if not isinstance(entry, dict):
        found = sorted(k for k in header if k != "__metadata__") if isinstance(header, dict) else []
        raise CorpusSourceError(f"{name}: no tensor named {TENSOR_NAME!r} (found {found})")
    shape, dtype, offsets = entry.get("shape"), entry.get("dtype"), entry.get("data_offsets")
    if dtype not in _DTYPES and dtype != _BF16:
        raise CorpusSourceError(f"{name}: {TENSOR_NAME} has dtype {dtype}; expected F32/F16/BF16")
    if not isinstance(shape, list) or len(shape) != 2 or shape[1] < 1:
        raise CorpusSourceError(f"{name}: {TENSOR_NAME} has shape {shape}, expected N x D")
    layout = _TensorLayout(shape[0], shape[1], dtype, 8 + size + offsets[0])
    expected = layout.rows * layout.row_bytes
    if offsets[1] - offsets[0] != expected or source.tensor_path.stat().st_size < (
        layout.data_start + expected
    ):
        raise CorpusSourceError(f"{name}: the file is shorter than its {shape} {dtype} tensor")
    return layout


def embedding_shape(source: EmbeddingSource) -> tuple[int, int]:
    """(rows, dimension) of the ``embeddings`` tensor; anything but a 2-D tensor is an error."""
    layout = _tensor_layout(source)
    return layout.rows, layout.dim


def iter_embedding_chunks(
    source: EmbeddingSource, chunk_rows: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, float32 block) over the tensor, read chunk by chunk from the file."""
    layout = _tensor_layout(source)
    with source.tensor_path.open("rb") as handle:
        handle.seek(layout.data_start)
        for start in range(0, layout.rows, chunk_rows):
            count = min(chunk_rows, layout.rows - start)
            data = handle.read(count * layout.row_bytes)
            if layout.dtype == _BF16:
                bits = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
                block = bits.view(np.float32)
            else:
                block = np.frombuffer(data, dtype=_DTYPES[layout.dtype]).astype(np.float32)
            yield start, block.reshape(count, layout.dim)


def first_bad_row(block: np.ndarray) -> tuple[int, str] | None:
    """The first row with NaN/infinite values or only zeros (no direction, so no cosine)."""
    finite = np.isfinite(block).all(axis=1)
    nonzero = np.abs(block).max(axis=1, initial=0.0) > 0
    bad = np.flatnonzero(~(finite & nonzero))
    if not bad.size:
        return None
    row = int(bad[0])
    return row, ("NaN or infinite values" if not finite[row] else "only zeros")
