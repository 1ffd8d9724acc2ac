"""embed_corpus through the real engine, on a tiny random CLIP saved to disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from transformers import CLIPModel

from apps import engine
from apps.corpus import selectors, services
from apps.corpus.models import Sentence, SentenceEmbedding
from apps.corpus.vectors import get_stored_dimension
from tests.engine.conftest import CROP, save_clip, save_lora, tiny_config, write_tokenizer

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_clip")
    tokenizer = write_tokenizer(root / "tokenizer")
    torch.manual_seed(0)
    base = save_clip(CLIPModel(tiny_config(tokenizer)), tokenizer, root / "base", CROP)
    adapter = save_lora(CLIPModel.from_pretrained(base), root / "lora", seed=1)
    return base, adapter


@pytest.fixture
def configured(tiny_models, settings):
    """The process's engine registry set to the tiny models through the model settings (the
    settings fixture puts them back afterwards)."""
    base, adapter = tiny_models
    settings.MODEL_SETTINGS = {
        "CLIP_BASE_MODEL": str(base),
        "CLIP_ADAPTER": "",
        "PAINTINGCLIP_BASE_MODEL": str(base),
        "PAINTINGCLIP_ADAPTER": str(adapter),
        "MODEL_DEVICE": "cpu",
        "MODEL_DTYPE": "fp32",
    }
    return engine.get_registry()


def test_unknown_model_is_refused():
    with pytest.raises(CommandError, match="unknown model 'nope'"):
        call_command("embed_corpus", "--model", "nope", "--no-progress")


def test_embeds_what_is_missing_resumes_and_stores_engine_vectors(corpus_dir, configured):
    root, _ = corpus_dir(models=())
    services.import_corpus([root])
    call_command("embed_corpus", "--model", "clip", "--slice", "10", "--no-progress")
    assert selectors.count_embeddings() == {"clip": 36}
    clip_before = sorted(
        SentenceEmbedding.objects.filter(model="clip").values_list("sentence_id", "embedding")
    )

    call_command("embed_corpus", "--model", "all", "--slice", "7", "--no-progress")
    assert selectors.count_embeddings() == {"clip": 36, "paintingclip": 36}
    assert get_stored_dimension("paintingclip") == 24
    after = sorted(
        SentenceEmbedding.objects.filter(model="clip").values_list("sentence_id", "embedding")
    )
    assert [(s, list(v)) for s, v in after] == [(s, list(v)) for s, v in clip_before]

    sentences = list(Sentence.objects.order_by("id")[:5])
    expected = engine.embed_texts([s.text for s in sentences], "paintingclip", registry=configured)
    stored = {
        sid: np.asarray(v, np.float32)
        for sid, v in SentenceEmbedding.objects.filter(
            model="paintingclip", sentence__in=sentences
        ).values_list("sentence_id", "embedding")
    }
    for sentence, vector in zip(sentences, expected, strict=True):
        np.testing.assert_allclose(stored[sentence.id], vector, atol=2e-3)

    # The tiny random model embeds these near-identical sentences almost alike, so the top
    # hit may be a neighbour within half-precision error; the sentence itself scores ~1.
    hits = selectors.search_sentences(expected[0], "paintingclip", k=36)
    scores = {hit.sentence_id: hit.score for hit in hits}
    assert scores[sentences[0].id] > 0.999
    assert scores[sentences[0].id] >= hits[0].score - 1e-3

    call_command("embed_corpus", "--model", "all", "--no-progress")  # nothing left to do
    assert selectors.count_embeddings() == {"clip": 36, "paintingclip": 36}
