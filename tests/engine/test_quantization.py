"""MODEL_DTYPE=int8: the CPU text encoder in int8, eager for queries, compiled for imports;
image retrieval on an int8 copy of the vision tower, compiled when a worker warms up."""

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
        specs(tiny_clip),
        device="cpu",
        dtype="int8",
        compile_text_from=len(SENTENCES) * 10,
        compile_vision=False,  # compiled in its own test
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


def test_int8_embeds_images_with_a_quantised_copy_of_the_vision_tower(
    tiny_clip: TinyClip, int8: engine.ModelRegistry
) -> None:
    fp32 = engine.ModelRegistry(specs(tiny_clip), device="cpu", dtype="fp32")
    image = noise(90, 70, seed=3)
    for key in KEYS:
        expected = engine.analyse_image(image, key, registry=fp32)
        seen = engine.analyse_image(image, key, registry=int8)
        assert float(seen.embedding @ expected.embedding) > 0.99
        assert (seen.cells * expected.cells).sum(-1).min() > 0.99
        assert np.abs(seen.embedding - expected.embedding).max() > 1e-4  # really quantised

    model = int8.get("clip")
    copy_linear = model.vision_encoder.run.vision_model.encoder.layers[0].mlp.fc1
    tower_linear = model.clip.vision_model.encoder.layers[0].mlp.fc1
    assert type(copy_linear.weight) is not torch.nn.Parameter
    assert type(tower_linear.weight) is torch.nn.Parameter  # Grad-ECLIP's tower stays fp32
    assert int8.status()["clip"]["vision_encoder"] == "int8"


def test_warm_up_compiles_the_int8_vision_encoder(tiny_clip: TinyClip) -> None:
    registry = engine.ModelRegistry(specs(tiny_clip)[:1], device="cpu", dtype="int8")
    eager = engine.ModelRegistry(
        specs(tiny_clip)[:1], device="cpu", dtype="int8", compile_vision=False
    )
    registry.get("clip")
    frames_before = torch._dynamo.utils.counters["frames"]["ok"]

    engine.warm_up(registry)

    assert torch._dynamo.utils.counters["frames"]["ok"] > frames_before
    image = noise(80, 64, seed=5)
    compiled = engine.embed_image(image, "clip", registry=registry)
    assert float(compiled @ engine.embed_image(image, "clip", registry=eager)) > 0.999


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


AVX2_ONLY = {"architecture": "x86_64", "cpu_name": "AMD EPYC", "avx2": True, "avx512_vnni": False}


@pytest.mark.parametrize(
    ("dtype", "capabilities", "warned"),
    [
        ("int8", AVX2_ONLY, True),
        ("bf16", AVX2_ONLY, True),
        ("fp32", AVX2_ONLY, False),
        ("auto", AVX2_ONLY, False),
        ("int8", AVX2_ONLY | {"avx512_vnni": True}, False),
        ("int8", AVX2_ONLY | {"avx_vnni": True}, False),
        ("int8", AVX2_ONLY | {"avx512_bf16": True}, True),
        ("bf16", AVX2_ONLY | {"avx512_bf16": True}, False),
        ("bf16", AVX2_ONLY | {"amx_bf16": True}, False),
        ("int8", {"architecture": "aarch64", "neon": True}, False),
    ],
)
def test_a_dtype_this_cpu_would_emulate_is_named(dtype, capabilities, warned) -> None:
    warning = engine.registry.cpu_dtype_warning(dtype, torch.device("cpu"), capabilities)

    assert (warning is not None) is warned
    if warned:
        assert f"MODEL_DTYPE={dtype}" in warning
        assert "AMD EPYC" in warning
        assert "use MODEL_DTYPE=fp32" in warning


def test_the_registry_warns_and_reports_an_emulated_int8(
    tiny_clip: TinyClip, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: AVX2_ONLY)
    with caplog.at_level("WARNING", logger="apps.engine"):
        slow = engine.ModelRegistry(specs(tiny_clip), device="cpu", dtype="int8")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: AVX2_ONLY | {"amx_int8": True})
    fast = engine.ModelRegistry(specs(tiny_clip), device="cpu", dtype="int8")

    warning = slow.status()["clip"]["dtype_warning"]
    assert "without AVX-512 VNNI, AVX-VNNI or AMX" in warning
    assert [record.getMessage() for record in caplog.records] == [warning]
    assert fast.status()["clip"]["dtype_warning"] is None
