"""MODEL_DTYPE=int8: image retrieval on an int8 copy of the vision tower, and the text encoder
in int8, with torchao's kernels (compiled for imports and when a worker warms up); or the
vision copy alone with fbgemm's (eager, for x86 CPUs without an int8 dot product). Both sets
run on any x86 CPU, so both are tested here whatever this machine's CPU would choose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apps import engine
from apps.engine.quantization import PatchProjection, TextEncoder, choose_int8_kernels
from tests.engine.conftest import TinyClip
from tests.engine.test_images import noise
from tests.engine.test_text_embedding import SENTENCES

KEYS = ["clip", "paintingclip"]


def specs(tiny_clip: TinyClip) -> list[engine.ModelSpec]:
    return [
        engine.ModelSpec("clip", str(tiny_clip.base)),
        engine.ModelSpec("paintingclip", str(tiny_clip.base), str(tiny_clip.adapter)),
    ]


@pytest.fixture(scope="module", params=["torchao", "fbgemm"])
def int8(tiny_clip: TinyClip, request: pytest.FixtureRequest) -> engine.ModelRegistry:
    return engine.ModelRegistry(
        specs(tiny_clip),
        device="cpu",
        dtype="int8",
        compile_text_from=len(SENTENCES) * 10,
        compile_vision=False,  # compiled in its own test
        int8_kernels=request.param,
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_int8_text_encoder_is_torchao_s_or_stays_fp32_with_fbgemm(
    tiny_clip: TinyClip, int8: engine.ModelRegistry
) -> None:
    fp32 = engine.ModelRegistry(specs(tiny_clip), device="cpu", dtype="fp32")
    expected = engine.embed_texts_multi(SENTENCES, KEYS, registry=fp32)
    vectors = engine.embed_texts_multi(SENTENCES, KEYS, registry=int8)

    model = int8.get("clip")
    text_linear = model.clip.text_model.encoder.layers[0].mlp.fc1
    vision_linear = model.clip.vision_model.encoder.layers[0].mlp.fc1
    assert type(vision_linear.weight) is torch.nn.Parameter
    assert int8.get("paintingclip").shares_text_encoder_with(model)
    status = int8.status()["clip"]
    assert (status["dtype"], status["int8_kernels"]) == ("float32", int8.int8_kernels)
    for key in KEYS:
        assert vectors[key].dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors[key], axis=1), 1.0, atol=1e-5)
    if int8.int8_kernels == "torchao":
        for key in KEYS:
            assert cosines(vectors[key], expected[key]).min() > 0.999
            assert np.abs(vectors[key] - expected[key]).max() > 1e-4  # really quantised
        assert type(text_linear.weight) is not torch.nn.Parameter
        assert status["text_encoder"] == "int8"
    else:  # fbgemm's int8 would cost sentence vectors too much precision: fp32 stays
        for key in KEYS:
            np.testing.assert_allclose(vectors[key], expected[key], atol=1e-6)
        assert type(text_linear.weight) is torch.nn.Parameter
        assert status["text_encoder"] == "float32"
    assert status["vision_encoder"] == "int8"


def test_torchao_queries_run_eagerly_and_imports_compiled(
    int8: engine.ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    if int8.int8_kernels != "torchao":
        pytest.skip("fbgemm's int8 encoders are never compiled (see the next test)")
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


def test_fbgemm_s_int8_vision_encoder_is_never_compiled(
    tiny_clip: TinyClip, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="apps.engine")
    registry = engine.ModelRegistry(
        specs(tiny_clip)[:1], device="cpu", dtype="int8", int8_kernels="fbgemm"
    )
    frames_before = torch._dynamo.utils.counters["frames"]["ok"]

    engine.warm_up(registry)
    image = noise(80, 64, seed=5)
    first, again = (engine.embed_image(image, "clip", registry=registry) for _ in range(2))

    assert torch._dynamo.utils.counters["frames"]["ok"] == frames_before
    assert "Compiling" not in caplog.text
    np.testing.assert_array_equal(first, again)
    assert registry.get("clip").vision_encoder.int8


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
    copy_tower = model.vision_encoder.run.vision_model
    copy_linear = copy_tower.encoder.layers[0].mlp.fc1
    tower_linear = model.clip.vision_model.encoder.layers[0].mlp.fc1
    assert type(tower_linear.weight) is torch.nn.Parameter  # Grad-ECLIP's tower stays fp32
    assert type(model.clip.vision_model.embeddings.patch_embedding) is torch.nn.Conv2d
    if int8.int8_kernels == "torchao":
        assert type(copy_linear.weight) is not torch.nn.Parameter  # a quantised tensor
    else:
        assert type(copy_linear) is torch.ao.nn.quantized.dynamic.Linear
        patches = copy_tower.embeddings.patch_embedding
        assert type(patches) is PatchProjection
        assert type(patches.projection) is torch.ao.nn.quantized.dynamic.Linear
    assert int8.status()["clip"]["vision_encoder"] == "int8"


def test_patch_projection_gives_the_convolution_s_output() -> None:
    torch.manual_seed(0)
    for bias in (False, True):
        conv = torch.nn.Conv2d(3, 24, kernel_size=8, stride=8, bias=bias)
        projection = PatchProjection(conv)
        for height, width in [(32, 32), (40, 24), (37, 29)]:  # the last leaves a remainder
            pixels = torch.randn(2, 3, height, width)
            with torch.no_grad():
                torch.testing.assert_close(projection(pixels), conv(pixels), atol=1e-5, rtol=1e-4)
    assert projection.weight.dtype == torch.float32  # what CLIPVisionEmbeddings casts pixels to
    for not_patches in (
        torch.nn.Conv2d(3, 24, kernel_size=8, stride=4),
        torch.nn.Conv2d(3, 24, kernel_size=(8, 4), stride=(8, 4)),
        torch.nn.Conv2d(3, 24, kernel_size=8, stride=8, padding=1),
        torch.nn.Conv2d(3, 24, kernel_size=8, stride=8, dilation=2),
    ):
        with pytest.raises(ValueError, match="is not a patch embedding"):
            PatchProjection(not_patches)


def test_warm_up_compiles_torchao_s_int8_vision_encoder(tiny_clip: TinyClip) -> None:
    registry = engine.ModelRegistry(
        specs(tiny_clip)[:1], device="cpu", dtype="int8", int8_kernels="torchao"
    )
    eager = engine.ModelRegistry(
        specs(tiny_clip)[:1],
        device="cpu",
        dtype="int8",
        compile_vision=False,
        int8_kernels="torchao",
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
    assert engine.specs_from_env({"MODEL_INT8_KERNELS": "fbgemm"}).int8_kernels == "fbgemm"
    assert engine.specs_from_env({}).int8_kernels == "auto"
    with pytest.raises(ValueError, match="MODEL_INT8_KERNELS='onnx' is not one of"):
        engine.specs_from_env({"MODEL_INT8_KERNELS": "onnx"})
    with pytest.raises(ValueError, match="int8_kernels='onnx' is not auto, torchao or fbgemm"):
        engine.ModelRegistry(specs(tiny_clip), device="cpu", dtype="int8", int8_kernels="onnx")
    assert engine.ModelRegistry(specs(tiny_clip), dtype="fp32").int8_kernels is None


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
NO_AVX2 = {"architecture": "x86_64", "cpu_name": "Intel Xeon E5-2670", "avx": True}


@pytest.mark.parametrize(
    ("capabilities", "kernels"),
    [
        (AVX2_ONLY, "fbgemm"),
        (AVX2_ONLY | {"avx512_vnni": True}, "torchao"),
        (AVX2_ONLY | {"avx_vnni": True}, "torchao"),
        (AVX2_ONLY | {"amx_int8": True}, "torchao"),
        (AVX2_ONLY | {"avx512_bf16": True}, "fbgemm"),
        (NO_AVX2, "torchao"),
        ({"architecture": "aarch64", "neon": True}, "torchao"),
    ],
)
def test_int8_kernels_suit_the_cpu(capabilities, kernels) -> None:
    assert choose_int8_kernels(capabilities) == kernels


@pytest.mark.parametrize(
    ("dtype", "kernels", "capabilities", "warned"),
    [
        ("int8", None, NO_AVX2, "without AVX-512 VNNI, AVX-VNNI or AMX"),
        ("int8", None, AVX2_ONLY, None),
        ("int8", "torchao", AVX2_ONLY, "with torchao's kernels on a CPU without AVX-512 VNNI"),
        ("int8", "fbgemm", NO_AVX2, "with fbgemm's kernels on a CPU without AVX2 "),
        ("bf16", None, AVX2_ONLY, "MODEL_DTYPE=bf16 on a CPU without AVX-512 BF16 or AMX"),
        ("fp32", None, NO_AVX2, None),
        ("auto", None, AVX2_ONLY, None),
        ("int8", None, NO_AVX2 | {"avx512_vnni": True}, None),
        ("int8", "torchao", AVX2_ONLY | {"amx_int8": True}, None),
        ("bf16", None, AVX2_ONLY | {"avx512_bf16": True}, None),
        ("bf16", None, AVX2_ONLY | {"amx_bf16": True}, None),
        ("bf16", None, {"architecture": "aarch64", "neon": True}, None),
    ],
)
def test_a_dtype_this_cpu_would_emulate_is_named(dtype, kernels, capabilities, warned) -> None:
    warning = engine.registry.cpu_dtype_warning(
        dtype, torch.device("cpu"), capabilities, int8_kernels=kernels
    )

    if warned is None:
        assert warning is None
    else:
        assert warned in warning
        assert f"MODEL_DTYPE={dtype}" in warning
        assert capabilities["cpu_name"] in warning
        assert "use MODEL_DTYPE=fp32" in warning


def test_the_registry_picks_kernels_and_warns_of_an_emulated_int8(
    tiny_clip: TinyClip, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: NO_AVX2)
    with caplog.at_level("WARNING", logger="apps.engine"):
        slow = engine.ModelRegistry(specs(tiny_clip), device="cpu", dtype="int8")
    logged = [record.getMessage() for record in caplog.records]
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: AVX2_ONLY)
    avx2 = engine.ModelRegistry(specs(tiny_clip), device="cpu", dtype="int8")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: AVX2_ONLY | {"amx_int8": True})
    amx = engine.ModelRegistry(specs(tiny_clip), device="cpu", dtype="int8")
    forced = engine.ModelRegistry(specs(tiny_clip), dtype="int8", int8_kernels="fbgemm")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: AVX2_ONLY)
    slow_forced = engine.ModelRegistry(specs(tiny_clip), dtype="int8", int8_kernels="torchao")

    warning = slow.status()["clip"]["dtype_warning"]
    assert "with torchao's kernels on a CPU without AVX-512 VNNI, AVX-VNNI or AMX" in warning
    assert logged == [warning]
    assert "torchao's kernels" in slow_forced.status()["clip"]["dtype_warning"]
    assert avx2.status()["clip"]["dtype_warning"] is None
    assert amx.status()["clip"]["dtype_warning"] is None
    kernels = [r.status()["clip"]["int8_kernels"] for r in (slow, avx2, amx, forced)]
    assert kernels == ["torchao", "fbgemm", "torchao", "fbgemm"]
