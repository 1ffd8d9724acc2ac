"""MODEL_DTYPE=int8: the CPU text encoder in int8, eager for queries, compiled for imports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apps import engine
from apps.engine.quantization import TextEncoder
from tests.engine.conftest import TinyClip
from tests.engine.test_images import noise
from tests.engine.test_text_embedding import SENTENCES

KEYS = ["clip", "paintingclip"]


def specs(tiny_clip: TinyClip) -> list[engine.ModelSpec]:
    return [
        engine.ModelSpec("clip", str(tiny_clip.base)),
        engine.ModelSpec("paintingclip", str(tiny_clip.base), str(tiny_clip.adapter)),
    ]


@pytest.fixture(scope="module")
def int8(tiny_clip: TinyClip) -> engine.ModelRegistry:
    return engine.ModelRegistry(
        specs(tiny_clip), device="cpu", dtype="int8", compile_text_from=len(SENTENCES) * 10
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_int8_quantises_the_text_encoder_only_and_stays_close_to_fp32(
    tiny_clip: TinyClip, int8: engine.ModelRegistry
) -> None:
    fp32 = engine.ModelRegistry(specs(tiny_clip), device="cpu", dtype="fp32")
    expected = engine.embed_texts_multi(SENTENCES, KEYS, registry=fp32)
    vectors = engine.embed_texts_multi(SENTENCES, KEYS, registry=int8)

    for key in KEYS:
        assert vectors[key].dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors[key], axis=1), 1.0, atol=1e-5)
        assert cosines(vectors[key], expected[key]).min() > 0.999
        assert np.abs(vectors[key] - expected[key]).max() > 1e-4  # really quantised
    model = int8.get("clip")
    text_linear = model.clip.text_model.encoder.layers[0].mlp.fc1
    vision_linear = model.clip.vision_model.encoder.layers[0].mlp.fc1
    assert type(text_linear.weight) is not type(vision_linear.weight)
    assert type(vision_linear.weight) is torch.nn.Parameter
    assert int8.get("paintingclip").shares_text_encoder_with(model)
    status = int8.status()["clip"]
    assert (status["dtype"], status["text_encoder"]) == ("float32", "int8")


def test_queries_run_eagerly_and_imports_compiled(
    int8: engine.ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="apps.engine")
    encoder = int8.get("clip").text_encoder
    eager = engine.embed_texts(SENTENCES, "clip", registry=int8)
    assert not encoder.compiled

    many = SENTENCES * 10
    compiled = engine.embed_texts(many, "clip", registry=int8)

    assert encoder.compiled
    assert f"Compiling the int8 text encoder for a call of {len(many)} sentences" in caplog.text
    assert cosines(compiled[: len(SENTENCES)], eager).min() > 0.999
    # A sentence's vector hardly depends on its batch (int8 kernels differ by shape).
    repeats = compiled.reshape(10, len(SENTENCES), -1)
    assert min(cosines(copy, repeats[0]).min() for copy in repeats) > 0.9999


def test_gradeclip_explains_with_int8_text_embeddings(int8: engine.ModelRegistry) -> None:
    maps = engine.gradeclip_maps(noise(90, 70, seed=7), SENTENCES[:3], "clip", registry=int8)

    assert maps.shape == (3, 4, 4)
    assert np.isfinite(maps).all()
    assert maps.max() == 1.0


def test_int8_is_a_cpu_option(tiny_clip: TinyClip) -> None:
    with pytest.raises(ValueError, match="for a CPU; on a GPU use bf16 or fp16"):
        engine.ModelRegistry(specs(tiny_clip), device="cuda", dtype="int8")
    assert engine.specs_from_env({"MODEL_DTYPE": "INT8"}).dtype == "int8"


def test_without_a_cxx_compiler_the_encoder_stays_eager(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CXX", "artefact-tests-no-such-compiler")
    module = torch.nn.Linear(4, 4)
    encoder = TextEncoder(module, int8=True, compile_from=10)

    assert encoder.for_texts(100) is module
    assert not encoder.compiled
    assert "No C++ compiler (artefact-tests-no-such-compiler)" in caplog.text
