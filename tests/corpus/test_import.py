"""import_corpus: the real sample, a small written corpus, and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from safetensors.torch import save_file as save_torch

from apps.corpus import services
from apps.corpus.importers import CorpusSourceError
from apps.corpus.models import Creator, Paragraph, Sentence, SentenceEmbedding, Topic, Work
from tests.corpus.conftest import snapshot, write_embeddings

pytestmark = pytest.mark.django_db


def test_sample_imports_with_expected_counts_and_a_second_run_changes_nothing(sample: Path):
    summary = services.import_corpus([sample])

    assert Work.objects.count() == 32
    assert Creator.objects.count() == 3
    assert Topic.objects.count() == 172
    assert Topic.objects.exclude(name=None).count() == 3
    with_text = Work.objects.filter(sentences__isnull=False).distinct()
    assert with_text.count() == 20
    assert summary.works_written == 20
    assert summary.metadata_only_works == 12
    assert Work.objects.get(id="W4230184349").sentences.count() == 0  # 0 sentences, no Markdown
    # Every sentence keeps more than three words and lies in its paragraph.
    sentence = Sentence.objects.select_related("paragraph").get(id="W2019734204_s0001")
    assert len(sentence.text.split()) > 3
    assert sentence.text in sentence.paragraph.text
    assert "<" not in Work.objects.get(id="W2019734204").display_title
    assert "<i>" in Work.objects.get(id="W2019734204").title
    stubbs = Creator.objects.get(slug="george_stubbs")
    assert stubbs.name == "George Stubbs"
    assert stubbs.works.count() == 13  # 10 in creators.json + 3 metadata-only by Artist
    assert Work.objects.get(id="W1982215463").images.count() == 7

    before = snapshot(with_versions=True)
    again = services.import_corpus([sample])
    assert again.works_written == 0
    assert snapshot(with_versions=True) == before


def test_small_corpus_text_paragraphs_images_and_embeddings(corpus_dir):
    root, vectors = corpus_dir()
    summary = services.import_corpus([root])

    assert summary.sentences == 36
    assert summary.embeddings == {"clip": 36}
    work = Work.objects.get(id="W100")
    assert list(work.topics.values_list("id", flat=True)) == ["T1", "T3"]
    assert Topic.objects.get(id="T3").name is None
    assert Topic.objects.get(id="T1").name == "Portraits"
    sentences = list(work.sentences.order_by("position"))
    assert [s.id for s in sentences] == [f"W100_s{n:04d}" for n in range(1, 7)]
    assert sentences[0].text == "Work 0 paragraph 1 sentence 1 discusses colour."
    assert [s.paragraph.position for s in sentences] == [0, 0, 0, 1, 1, 1]
    assert Paragraph.objects.filter(work=work).count() == 2  # the heading is no paragraph
    assert [i.name for i in work.images.all()] == ["fig_0.png"]
    assert work.images.get().image.read().startswith(b"\x89PNG")
    assert Work.objects.get(id="W199").sentences.count() == 0
    stored = SentenceEmbedding.objects.get(model="clip", sentence_id="W100_s0002")
    assert stored.work_id == "W100"
    assert stored.searchable
    np.testing.assert_allclose(
        np.asarray(stored.embedding, np.float16), vectors["clip"][1].astype(np.float16), rtol=0
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_embedding_files_import_as_their_values(corpus_dir, dtype):
    root, vectors = corpus_dir()
    ids = json.loads((root / "clip_embeddings_sentence_ids.json").read_text())
    values = torch.from_numpy(vectors["clip"]).to(dtype)
    save_torch({"embeddings": values}, str(root / "clip_embeddings.safetensors"))
    services.import_corpus([root])
    stored = SentenceEmbedding.objects.get(model="clip", sentence_id=ids[3]).embedding
    expected = values[3].float().numpy().astype(np.float16)
    np.testing.assert_array_equal(np.asarray(stored, np.float16), expected)


def test_markdown_only_import_then_embeddings_only_source(corpus_dir, tmp_path: Path):
    """The demo's path: Markdown without sentences.json first, vectors in a later run."""
    root, _ = corpus_dir(models=())
    services.import_corpus([root])
    assert SentenceEmbedding.objects.count() == 0

    later = tmp_path / "vectors"
    (later / "json_info").mkdir(parents=True)
    (later / "json_info" / "works.json").write_text((root / "json_info/works.json").read_text())
    ids = list(Sentence.objects.order_by("id").values_list("id", flat=True))
    write_embeddings(later, "paintingclip", ids, np.ones((len(ids), 4), np.float32))
    text_before = snapshot()["sentence"]
    summary = services.import_corpus([later])
    assert summary.embeddings == {"paintingclip": 36}
    assert snapshot()["sentence"] == text_before


# -- bad input: a clear error naming file and entry, and the database unchanged ------------------


def _break_works_json(root: Path) -> None:
    text = (root / "json_info/works.json").read_text()
    (root / "json_info/works.json").write_text(text[: len(text) // 2])


def _break_sentences_json(root: Path) -> None:
    (root / "json_info/sentences.json").write_text(
        '{"W100_s0001": {"English Original": "A sentence of the first work."},\n'
        '"W100_s0002": {"English Original": "Cut off'
    )


def _sentences_of_unknown_work(root: Path) -> None:
    (root / "json_info/sentences.json").write_text(
        json.dumps({"W100_s0001": {"English Original": "Fine."}, "W777_s0001": {"x": 1}})
    )


def _creator_of_unknown_work(root: Path) -> None:
    (root / "json_info/creators.json").write_text(json.dumps({"anna_artist": ["W100", "W555"]}))


def _rows_differ_from_ids(root: Path) -> None:
    ids = json.loads((root / "clip_embeddings_sentence_ids.json").read_text())
    (root / "clip_embeddings_sentence_ids.json").write_text(json.dumps(ids[:-1]))


def _ids_of_unknown_work(root: Path) -> None:
    ids = json.loads((root / "clip_embeddings_sentence_ids.json").read_text())
    ids[5] = "W888_s0001"
    (root / "clip_embeddings_sentence_ids.json").write_text(json.dumps(ids))


def _wrong_dimension(root: Path) -> None:
    ids = json.loads((root / "clip_embeddings_sentence_ids.json").read_text())
    write_embeddings(root, "clip", ids, np.ones((len(ids), 6), np.float32))


def _nan_row(root: Path) -> None:
    ids = json.loads((root / "clip_embeddings_sentence_ids.json").read_text())
    vectors = np.ones((len(ids), 8), np.float32)
    vectors[7, 3] = np.nan
    write_embeddings(root, "clip", ids, vectors)


def _truncated_tensor(root: Path) -> None:
    path = root / "clip_embeddings.safetensors"
    path.write_bytes(path.read_bytes()[:-100])


def _ids_malformed(root: Path) -> None:
    (root / "clip_embeddings_sentence_ids.json").write_text('["W100_s0001", "W100_s0002",')


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_break_works_json, "works.json: malformed JSON at line 1"),
        (_break_sentences_json, "sentences.json: malformed JSON at character"),
        (_sentences_of_unknown_work, "sentences.json: entry 'W777_s0001' names unknown work"),
        (_creator_of_unknown_work, "creators.json: creator 'anna_artist' names unknown work"),
        (_rows_differ_from_ids, "clip_embeddings.safetensors: 36 rows but"),
        (_ids_of_unknown_work, "entry 'W888_s0001' names unknown work 'W888'"),
        (_wrong_dimension, "vectors have 6 dimensions but the database holds 8-dimensional"),
        (_nan_row, "row 7 (sentence 'W101_s0002') holds NaN or infinite values"),
        (_ids_malformed, "clip_embeddings_sentence_ids.json: malformed JSON"),
        (_truncated_tensor, "clip_embeddings.safetensors: the file is shorter than"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_written(
    corpus_dir, damage, expected
):
    good, _ = corpus_dir("good")
    services.import_corpus([good])
    services.set_works_published(["W101"], False)  # curation that a bad import must not touch
    before = snapshot(with_versions=True)

    bad, _ = corpus_dir("bad", seed=1)  # other vectors: a partial write would show
    damage(bad)
    with pytest.raises(CorpusSourceError) as raised:
        services.import_corpus([bad])
    assert expected in str(raised.value)
    assert snapshot(with_versions=True) == before


def test_command_reports_bad_input_as_one_clear_error(corpus_dir):
    root, _ = corpus_dir()
    _nan_row(root)
    with pytest.raises(CommandError, match=r"nothing imported: clip_embeddings.safetensors: row 7"):
        call_command("import_corpus", "--source", str(root), "--no-progress")
    assert Work.objects.count() == 0


def test_missing_works_json_is_a_clear_error(tmp_path: Path):
    with pytest.raises(CorpusSourceError, match=r"no works\.json in"):
        services.import_corpus([tmp_path])


def test_hf_download_offline_fails_with_one_sentence(monkeypatch, settings, tmp_path: Path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings.CORPUS_HF_CACHE = tmp_path
    with pytest.raises(CommandError, match=r"could not download the json dataset .*--source"):
        call_command("import_corpus", "--hf", "--no-progress")
