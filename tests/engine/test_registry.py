"""Model registry: lazy thread-safe loading, adapter fallback, clear errors, configuration."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from apps import engine
from apps.engine import config as config_module
from apps.engine import registry as registry_module
from apps.engine.config import DEMO_BASE_MODEL, DEMO_PAINTINGCLIP_ADAPTER
from tests.engine.conftest import CROP, TinyClip, save_clip, write_tokenizer

TEXTS = ["the saint", "a dog of the painter"]


def test_models_load_lazily_once_and_report_status(tiny_clip: TinyClip) -> None:
    registry = tiny_clip.registry()
    before = registry.status()
    assert before["clip"]["loaded"] is False
    assert before["clip"]["adapter_state"] is None

    results: list[engine.LoadedModel] = []
    threads = [
        threading.Thread(target=lambda: results.append(registry.get("paintingclip")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert all(result is results[0] for result in results)

    status = registry.status()["paintingclip"]
    assert status == {
        "loaded": True,
        "base": str(tiny_clip.base),
        "adapter": str(tiny_clip.adapter),
        "adapter_state": engine.ADAPTER_LOADED,
        "device": "cpu",
        "dtype": "float32",
        "text_encoder": "float32",
        "vision_encoder": "float32",
        "int8_kernels": None,
        "dtype_warning": None,
        "embedding_dim": 24,
        "error": None,
    }
    assert registry.status()["clip"]["loaded"] is False
    assert registry.status(load=True)["clip"]["adapter_state"] == engine.ADAPTER_NONE


def test_missing_adapter_falls_back_to_base_with_warning(
    tiny_clip: TinyClip, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = engine.ModelRegistry(
        [
            engine.ModelSpec("clip", str(tiny_clip.base)),
            engine.ModelSpec("paintingclip", str(tiny_clip.base), str(tmp_path / "no-lora")),
        ],
        device="cpu",
    )
    with caplog.at_level(logging.WARNING, logger="apps.engine"):
        fallback = engine.embed_texts(TEXTS, "paintingclip", registry=registry)
    assert "PAINTINGCLIP_ADAPTER" in caplog.text
    assert "Falling back to the base model" in caplog.text
    assert registry.status()["paintingclip"]["adapter_state"] == engine.ADAPTER_MISSING
    base = engine.embed_texts(TEXTS, "clip", registry=registry)
    np.testing.assert_array_equal(fallback, base)


def test_adapter_hub_id_offline_falls_back(
    tiny_clip: TinyClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry = engine.ModelRegistry(
        [engine.ModelSpec("paintingclip", str(tiny_clip.base), "artefact-tests/no-such-lora")],
        device="cpu",
    )
    assert registry.get("paintingclip").adapter_state == engine.ADAPTER_MISSING


def test_missing_base_folder_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "weights" / "clip"
    registry = engine.ModelRegistry([engine.ModelSpec("clip", str(missing))], device="cpu")
    with pytest.raises(engine.ModelLoadError) as error:
        registry.get("clip")
    assert str(error.value) == (
        f"The base model for 'clip' (setting CLIP_BASE_MODEL='{missing}') could not be loaded: "
        "the folder does not exist."
    )
    assert registry.status()["clip"]["error"] == str(error.value)


def test_base_folder_without_model_is_a_clear_error(tmp_path: Path) -> None:
    registry = engine.ModelRegistry([engine.ModelSpec("paintingclip", str(tmp_path))])
    with pytest.raises(engine.ModelLoadError, match=r"PAINTINGCLIP_BASE_MODEL=.*holds no loadable"):
        registry.get("paintingclip")


def test_hub_id_with_hub_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry = engine.ModelRegistry([engine.ModelSpec("clip", "artefact-tests/no-such-clip")])
    started = time.monotonic()
    with pytest.raises(engine.ModelLoadError) as error:
        registry.get("clip")
    assert time.monotonic() - started < 10
    assert str(error.value) == (
        "The base model for 'clip' (setting CLIP_BASE_MODEL='artefact-tests/no-such-clip') "
        "could not be loaded: it is not a local folder and the Hugging Face hub is unreachable "
        "(HF_HUB_OFFLINE=1)."
    )


def test_unknown_key(registry: engine.ModelRegistry) -> None:
    with pytest.raises(engine.UnknownModelError, match=r"'nope'.*clip, paintingclip"):
        registry.get("nope")


def test_specs_from_env_defaults_and_overrides() -> None:
    defaults = engine.specs_from_env({})
    assert defaults.device == "auto"
    assert defaults.dtype == "auto"
    clip, paintingclip = defaults.specs
    assert clip == engine.ModelSpec("clip", str(DEMO_BASE_MODEL), None)
    assert paintingclip == engine.ModelSpec(
        "paintingclip", str(DEMO_BASE_MODEL), str(DEMO_PAINTINGCLIP_ADAPTER)
    )
    assert DEMO_BASE_MODEL.is_absolute()

    custom = engine.specs_from_env(
        {
            "CLIP_BASE_MODEL": "openai/clip-vit-base-patch32",
            "PAINTINGCLIP_BASE_MODEL": "openai/clip-vit-base-patch32",
            "PAINTINGCLIP_ADAPTER": "",
            "MODEL_DEVICE": "CPU",
            "MODEL_DTYPE": "bf16",
        }
    )
    assert custom.specs[1].adapter is None
    assert custom.specs[0].base == "openai/clip-vit-base-patch32"
    assert (custom.device, custom.dtype) == ("cpu", "bf16")
    with pytest.raises(ValueError, match="MODEL_DEVICE"):
        engine.specs_from_env({"MODEL_DEVICE": "tpu"})


def test_configure_sets_the_default_registry(
    tiny_clip: TinyClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_module, "_default_registry", None)
    monkeypatch.setattr(config_module, "_configured", None)
    configured = engine.configure(
        [engine.ModelSpec("clip", str(tiny_clip.base))], device="cpu", dtype="auto"
    )
    assert engine.get_registry() is configured
    assert configured.dtype == torch.float32
    via_default = engine.embed_texts(TEXTS, "clip")
    explicit = engine.embed_texts(TEXTS, "clip", registry=tiny_clip.registry())
    np.testing.assert_allclose(via_default, explicit, atol=1e-6)


def test_unconfigured_default_registry_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry_module, "_default_registry", None)
    monkeypatch.setattr(config_module, "_configured", None)
    monkeypatch.setenv("CLIP_BASE_MODEL", "/nonexistent/clip")
    monkeypatch.setenv("MODEL_DEVICE", "cpu")
    registry = engine.get_registry()
    assert registry.specs["clip"].base == "/nonexistent/clip"
    with pytest.raises(engine.ModelLoadError, match="CLIP_BASE_MODEL='/nonexistent/clip'"):
        engine.embed_texts(TEXTS, "clip")


def test_real_paintingclip_adapter_changes_only_the_projections(
    shared: Path, tmp_path: Path
) -> None:
    adapter = shared / "adapters" / "paintingclip"
    torch.manual_seed(0)
    tokenizer = write_tokenizer(tmp_path / "tokenizer")
    base = save_clip(CLIPModel(CLIPConfig()), tokenizer, tmp_path / "vit-b-32", CROP)
    registry = engine.ModelRegistry(
        [
            engine.ModelSpec("clip", str(base)),
            engine.ModelSpec("paintingclip", str(base), str(adapter)),
        ],
        device="cpu",
    )
    clip, paintingclip = registry.get("clip"), registry.get("paintingclip")
    assert paintingclip.adapter_state == engine.ADAPTER_LOADED
    assert paintingclip.adapter_modules == {"text_projection", "visual_projection"}
    assert paintingclip.shares_text_encoder_with(clip)

    plain, adapted = clip.clip.state_dict(), paintingclip.clip.state_dict()
    assert plain.keys() == adapted.keys()
    changed = {name for name in plain if not torch.equal(plain[name], adapted[name])}
    assert changed == {"text_projection.weight", "visual_projection.weight"}

    input_ids = tokenizer(TEXTS, padding=True, return_tensors="pt").input_ids
    with torch.inference_mode():
        pooled = [
            m.clip.text_model(input_ids=input_ids).pooler_output for m in (clip, paintingclip)
        ]
    torch.testing.assert_close(pooled[0], pooled[1], rtol=0, atol=0)
    vectors = engine.embed_texts_multi(TEXTS, ["clip", "paintingclip"], registry=registry)
    assert not np.allclose(vectors["clip"], vectors["paintingclip"], atol=1e-3)
