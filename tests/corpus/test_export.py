"""export_corpus writes the ArteFact layout; importing it into an empty corpus reproduces it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from safetensors.numpy import load_file

from apps.corpus import services
from apps.corpus.models import Creator, Paragraph, Sentence, SentenceEmbedding, Topic, Work
from tests.corpus.conftest import snapshot

pytestmark = pytest.mark.django_db


def _empty_corpus() -> None:
    for model in (SentenceEmbedding, Sentence, Paragraph, Work, Creator, Topic):
        model.objects.all().delete()


def test_export_then_import_reproduces_rows_and_vectors(corpus_dir, tmp_path: Path):
    root, vectors = corpus_dir(models=("clip", "paintingclip"))
    services.import_corpus([root])
    Creator.objects.filter(slug="anna_artist").update(name="Anna the Artist")
    before = snapshot()

    dest = tmp_path / "export"
    call_command("export_corpus", "--dest", str(dest), "--no-progress")

    assert sorted(p.name for p in (dest / "json_info").iterdir()) == [
        "creators.json",
        "sentences.json",
        "topic_names.json",
        "topics.json",
        "works.json",
    ]
    sentences = json.loads((dest / "json_info/sentences.json").read_text())
    assert sentences["W100_s0001"] == {
        "English Original": "Work 0 paragraph 1 sentence 1 discusses colour.",
        "Has CLIP Embedding": True,
        "Has PaintingCLIP Embedding": True,
    }
    source_md = (root / "marker_output/W103/W103.md").read_text()
    assert (dest / "marker_output/W103/W103.md").read_text() == source_md
    assert (dest / "marker_output/W103/fig_3.png").read_bytes().startswith(b"\x89PNG")
    ids = json.loads((dest / "clip_embeddings_sentence_ids.json").read_text())
    exported = load_file(str(dest / "clip_embeddings.safetensors"))["embeddings"]
    assert exported.dtype == np.float32
    assert exported.shape == (36, 8)
    order = sorted(range(36), key=lambda i: f"W{100 + i // 6}_s{i % 6 + 1:04d}")
    np.testing.assert_array_equal(exported, vectors["clip"][order].astype(np.float16))
    assert ids == sorted(ids)

    _empty_corpus()
    assert snapshot()["sentence:count"] == "0"
    services.import_corpus([dest])
    after = snapshot()
    # Curated display names are not part of the layout: the slug's name comes back.
    assert {k: v for k, v in after.items() if not k.startswith("creator")} == {
        k: v for k, v in before.items() if not k.startswith("creator")
    }
    assert Creator.objects.get(slug="anna_artist").name == "Anna Artist"


def test_published_only_export_leaves_unpublished_out(corpus_dir, tmp_path: Path):
    root, _ = corpus_dir()
    services.import_corpus([root])
    services.set_works_published(["W101"], False)
    services.set_sentences_published(["W100_s0001"], False)
    services.export_corpus(tmp_path / "out", published_only=True)
    works = json.loads((tmp_path / "out/json_info/works.json").read_text())
    sentences = json.loads((tmp_path / "out/json_info/sentences.json").read_text())
    ids = json.loads((tmp_path / "out/clip_embeddings_sentence_ids.json").read_text())
    assert "W101" not in works
    assert not any(s.startswith("W101_") for s in sentences)
    assert "W100_s0001" not in sentences
    assert len(ids) == len(sentences) == 29
