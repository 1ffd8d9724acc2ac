"""Batched text embedding against Hugging Face's own padded, masked forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import CLIPModel, CLIPTokenizer

from apps import engine
from apps.engine import embedding, tokenizing
from tests.engine.conftest import TinyClip

SENTENCES = [
    "the annunciation",
    "a saint and the dog of the painter, 1642.",
    "x",
    "the light of the window falls on the left side of the panel and the figures",
    "(oil on canvas)",
    "the annunciation",
    "red",
]


def reference(tiny_clip: TinyClip, texts: list[str], adapter: bool = False) -> np.ndarray:
    """Plain transformers: pad to the batch's longest, attention mask, get_text_features."""
    model = CLIPModel.from_pretrained(tiny_clip.base).eval()
    if adapter:
        model = PeftModel.from_pretrained(model, tiny_clip.adapter).eval()
    tokenizer = CLIPTokenizer.from_pretrained(tiny_clip.base)
    inputs = tokenizer(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.inference_mode():
        features = model.get_text_features(**inputs).pooler_output
    return F.normalize(features, dim=-1).numpy()


def test_shapes_norms_and_reference(tiny_clip: TinyClip, registry: engine.ModelRegistry) -> None:
    vectors = engine.embed_texts(SENTENCES, "clip", batch_size=3, registry=registry)
    assert vectors.shape == (len(SENTENCES), 24)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(vectors, reference(tiny_clip, SENTENCES), atol=1e-5)


def test_adapter_model_matches_peft_reference(
    tiny_clip: TinyClip, registry: engine.ModelRegistry
) -> None:
    vectors = engine.embed_texts(SENTENCES, "paintingclip", registry=registry)
    np.testing.assert_allclose(vectors, reference(tiny_clip, SENTENCES, adapter=True), atol=1e-5)
    assert not np.allclose(vectors, engine.embed_texts(SENTENCES, "clip", registry=registry))


def test_batching_invariance(registry: engine.ModelRegistry) -> None:
    alone = engine.embed_texts([SENTENCES[1]], "clip", registry=registry)
    for batch_size in (1, 2, 64):
        batched = engine.embed_texts(SENTENCES, "clip", batch_size=batch_size, registry=registry)
        np.testing.assert_allclose(batched[1], alone[0], atol=1e-5)
    np.testing.assert_allclose(batched[0], batched[5], atol=1e-6)


def test_long_sentences_are_truncated_to_the_context(
    tiny_clip: TinyClip, registry: engine.ModelRegistry
) -> None:
    long = ["the " * 40 + "end", "the " * 14 + "tail differs"]
    vectors = engine.embed_texts(long, "clip", registry=registry)
    np.testing.assert_allclose(vectors, reference(tiny_clip, long), atol=1e-5)


def test_multi_equals_separate_runs_and_shares_the_encoder(
    registry: engine.ModelRegistry,
) -> None:
    keys = ["clip", "paintingclip", "otherclip"]
    separate = {key: engine.embed_texts(SENTENCES, key, registry=registry) for key in keys}
    calls = []
    handles = [
        registry.get(key).clip.text_model.register_forward_hook(lambda *_: calls.append(1))
        for key in keys
    ]
    try:
        multi = engine.embed_texts_multi(SENTENCES, keys, batch_size=4, registry=registry)
    finally:
        for handle in handles:
            handle.remove()
    assert len(calls) == 2  # 7 sentences in batches of 4, one encoder pass for all three keys
    for key in keys:
        np.testing.assert_allclose(multi[key], separate[key], atol=1e-6)


def test_unmerged_peft_model_gives_the_same_vectors(
    tiny_clip: TinyClip, registry: engine.ModelRegistry
) -> None:
    unmerged = tiny_clip.registry(merge_adapters=False)
    assert type(unmerged.get("paintingclip").model).__name__ == "PeftModel"
    keys = ["clip", "paintingclip"]
    merged_vectors = engine.embed_texts_multi(SENTENCES, keys, registry=registry)
    wrapped_vectors = engine.embed_texts_multi(SENTENCES, keys, registry=unmerged)
    for key in keys:
        np.testing.assert_allclose(wrapped_vectors[key], merged_vectors[key], atol=1e-5)


def test_progress_callback_and_empty_input(registry: engine.ModelRegistry) -> None:
    seen: list[tuple[int, int]] = []
    engine.embed_texts_multi(
        SENTENCES,
        ["clip", "paintingclip"],
        batch_size=2,
        registry=registry,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (len(SENTENCES), len(SENTENCES))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert engine.embed_texts([], "clip", registry=registry).shape == (0, 24)


def test_chunks_are_stitched_in_order(
    tiny_clip: TinyClip, registry: engine.ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding, "FIRST_CHUNK_SIZE", 1)
    monkeypatch.setattr(embedding, "CHUNK_SIZE", 3)
    assert [(c.start, c.stop) for c in embedding._chunks(len(SENTENCES))] == [
        (0, 1),
        (1, 3),
        (3, 6),
        (6, 7),
    ]
    vectors = engine.embed_texts_multi(SENTENCES, ["clip", "paintingclip"], registry=registry)
    np.testing.assert_allclose(vectors["clip"], reference(tiny_clip, SENTENCES), atol=1e-5)
    np.testing.assert_allclose(
        vectors["paintingclip"], reference(tiny_clip, SENTENCES, adapter=True), atol=1e-5
    )


def test_rust_tokenizer_ids_equal_the_tokenizer_call(registry: engine.ModelRegistry) -> None:
    model = registry.get("clip")
    texts = [*SENTENCES, " ".join(SENTENCES)]
    expected = model.tokenizer(texts, truncation=True, max_length=model.max_text_length)
    flat, lengths = tokenizing.token_ids(texts, model.tokenizer, model.max_text_length)
    sentences = np.split(flat, np.cumsum(lengths)[:-1])
    assert [ids.tolist() for ids in sentences] == expected["input_ids"]
    assert lengths[-1] == model.max_text_length
    assert flat[-1] == model.tokenizer.eos_token_id
    # The copy is private: padding the shared tokenizer afterwards still pads.
    padded = model.tokenizer(texts[:2], padding=True)["input_ids"]
    assert len(padded[0]) == len(padded[1])


def test_tokenizer_pool_gives_the_same_vectors(
    tiny_clip: TinyClip, registry: engine.ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding, "FIRST_CHUNK_SIZE", 2)
    monkeypatch.setattr(embedding, "CHUNK_SIZE", 4)
    pooled: list[int] = []
    pool_token_ids = tokenizing.TokenizerPool.token_ids

    def spy(pool: tokenizing.TokenizerPool, texts: list[str]) -> tokenizing.TokenIds:
        pooled.append(len(texts))
        return pool_token_ids(pool, texts)

    monkeypatch.setattr(tokenizing.TokenizerPool, "token_ids", spy)
    texts = SENTENCES * 3
    vectors = engine.embed_texts_multi(
        texts, ["clip", "paintingclip"], registry=registry, tokenizer_workers=2
    )
    assert pooled == [2, 4, 4, 4, 4, 3]
    np.testing.assert_allclose(vectors["clip"], reference(tiny_clip, texts), atol=1e-5)
    np.testing.assert_allclose(
        vectors["paintingclip"], reference(tiny_clip, texts, adapter=True), atol=1e-5
    )
