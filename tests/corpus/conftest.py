"""Fixtures of the corpus tests: the shared sample, small corpora written per test, snapshots."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from django.db import connection
from safetensors.numpy import save_file

from apps.corpus import services

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``$ARTEFACT_SHARED_DIR``, else ``<repo>/../shared`` (where CI puts it beside the clone)."""
    return Path(os.environ.get("ARTEFACT_SHARED_DIR") or REPO_ROOT.parent / "shared")


@pytest.fixture
def sample() -> Path:
    path = shared_dir() / "corpus-sample"
    if not (path / "json_info" / "works.json").is_file():
        pytest.skip(f"no ArteFact sample at {path} (set ARTEFACT_SHARED_DIR to the shared/ folder)")
    return path


TOPICS = {"T1": "Portraits", "T2": "Landscapes", "T3": None}
CREATORS = ["anna_artist", "bruno_painter", "carla_maker"]


def _work_text(index: int) -> str:
    """Markdown with a heading, an image and two paragraphs of three sentences each."""
    lines = [f"# Essay number {index} on painting", "", f"![](fig_{index}.png)", ""]
    for paragraph in range(1, 3):
        lines.append(
            " ".join(
                f"Work {index} paragraph {paragraph} sentence {sentence} discusses colour."
                for sentence in range(1, 4)
            )
        )
        lines.append("")
    return "\n".join(lines)


def write_corpus(
    root: Path,
    *,
    works: int = 6,
    dim: int = 8,
    models: tuple[str, ...] = ("clip",),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A small corpus in the ArteFact layout; returns {model: vectors} in sentence-id order.

    Work i (W100…) belongs to creator i % 3 and topics T1 (even i) or T2 (odd i), plus T3
    for i == 0. Its Markdown yields 6 sentences; work W199 has metadata only.
    """
    json_dir = root / "json_info"
    json_dir.mkdir(parents=True)
    works_json, creators_json, topics_json = {}, {c: [] for c in CREATORS}, {t: [] for t in TOPICS}
    sentence_ids = []
    for index in range(works):
        work_id = f"W{100 + index}"
        topics = ["T1" if index % 2 == 0 else "T2"] + (["T3"] if index == 0 else [])
        creator = CREATORS[index % 3]
        works_json[work_id] = {
            "Artist": creator,
            "Link": f"https://example.org/{work_id}.pdf",
            "Number of Sentences": 6,
            "DOI": f"https://doi.org/10.1/{index}",
            "ImageIDs": [],
            "TopicIDs": topics,
            "Relevance": 1.5 + index,
            "Author_Name": f"Author {index}",
            "Work_Title": f"On <i>Painting</i> {index}",
            "Year": str(1990 + index),
            "BibTeX": f"@misc{{{work_id}}}",
        }
        creators_json[creator].append(work_id)
        for topic in topics:
            topics_json[topic].append(work_id)
        folder = root / "marker_output" / work_id
        folder.mkdir(parents=True)
        (folder / f"{work_id}.md").write_text(_work_text(index), encoding="utf-8")
        (folder / f"fig_{index}.png").write_bytes(b"\x89PNG fake image " + bytes([index]))
        sentence_ids += [f"{work_id}_s{n:04d}" for n in range(1, 7)]
    works_json["W199"] = dict(works_json["W100"], TopicIDs=["T1"], **{"Number of Sentences": 0})
    topics_json["T1"].append("W199")
    (json_dir / "works.json").write_text(json.dumps(works_json))
    (json_dir / "creators.json").write_text(json.dumps(creators_json))
    (json_dir / "topics.json").write_text(json.dumps(topics_json))
    names = {t: n for t, n in TOPICS.items() if n}
    (json_dir / "topic_names.json").write_text(json.dumps(names))
    rng = np.random.default_rng(seed)
    vectors = {}
    for model in models:
        vectors[model] = rng.standard_normal((len(sentence_ids), dim)).astype(np.float32)
        write_embeddings(root, model, sentence_ids, vectors[model])
    return vectors


def write_embeddings(root: Path, model: str, ids: list[str], vectors: np.ndarray) -> None:
    """An embeddings file pair exactly as the public dataset lays it out."""
    save_file({"embeddings": vectors}, str(root / f"{model}_embeddings.safetensors"))
    (root / f"{model}_embeddings_sentence_ids.json").write_text(json.dumps(ids))


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Callable[..., tuple[Path, dict[str, np.ndarray]]]:
    """Make a small corpus folder: (root, {model: vectors}); takes write_corpus's keywords."""

    def make(name: str = "corpus", **kwargs: object) -> tuple[Path, dict[str, np.ndarray]]:
        root = tmp_path / name
        root.mkdir()
        return root, write_corpus(root, **kwargs)

    return make


@pytest.fixture
def imported_corpus(corpus_dir) -> Path:
    """The small corpus written and imported (W100..W105 and W199); returns its folder."""
    root, _ = corpus_dir()
    services.import_corpus([root])
    return root


SNAPSHOT_QUERIES = {
    "work": "SELECT id, title, author, year, doi, link, bibtex, relevance, artist, image_ids,"
    " source_sentence_count, published, markdown, published_sentence_count FROM corpus_work",
    "creator": "SELECT slug, name FROM corpus_creator",
    "topic": "SELECT id, name FROM corpus_topic",
    "work_creators": "SELECT work_id, creator_id FROM corpus_work_creators",
    "work_topics": "SELECT work_id, topic_id FROM corpus_work_topics",
    "paragraph": "SELECT work_id, position, text FROM corpus_paragraph",
    "sentence": "SELECT s.id, s.work_id, s.position, s.text, p.position, s.published"
    " FROM corpus_sentence s LEFT JOIN corpus_paragraph p ON p.id = s.paragraph_id",
    "image": "SELECT work_id, name, position, image FROM corpus_workimage",
    "embedding": "SELECT model, sentence_id, work_id, searchable, embedding::text"
    " FROM corpus_sentenceembedding",
}


def snapshot(*, with_versions: bool = False) -> dict[str, str]:
    """A digest of every corpus table's content (without surrogate ids).

    ``with_versions`` adds each row's ``xmin``, so that any rewrite of a row, even with equal
    values, changes the digest.
    """
    digests = {}
    with connection.cursor() as cursor:
        for name, query in SNAPSHOT_QUERIES.items():
            if with_versions:
                table = query.split(" FROM ")[1].split()[0]
                cursor.execute(f"SELECT xmin::text FROM {table} ORDER BY xmin::text::bigint")
                versions = [row[0] for row in cursor.fetchall()]
            else:
                versions = []
            cursor.execute(query)
            rows = sorted(repr(row) for row in cursor.fetchall())
            digests[name] = hashlib.sha256("\n".join(rows + versions).encode()).hexdigest()
            digests[f"{name}:count"] = str(len(rows))
    return digests
