"""ArteFact's ML engine: CLIP / PaintingCLIP embeddings and Grad-ECLIP maps, without Django.

A host configures the models once, then calls the functions by model key:

    from apps import engine
    engine.configure(*engine.specs_from_env(os.environ))
    vectors = engine.embed_texts(sentences, "paintingclip")
    analysis = engine.analyse_image("painting.jpg", "clip")
    maps = engine.gradeclip_maps("painting.jpg", sentences[:5], "clip")

Every function also takes `registry=` to use a specific `ModelRegistry` instead of the default.

Names are imported on first use (PEP 562): `from apps.engine import load_image` or
`apps.engine.config` cost no torch, so web processes can use the torch-free parts (image
loading, geometry, overlays, configuration) while only model code pulls in torch,
transformers and peft.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import TYPE_CHECKING, Any


def _drop_torchao_enum_notes(record: logging.LogRecord) -> bool:
    # torchao (imported by transformers whenever it is installed) registers its Enums as
    # pytree constants, which torch 2.14 logs as deprecated on every import. Nothing for an
    # operator to act on; the filter sits here, before any submodule imports torch.
    return "is an Enum subclass and is now natively supported" not in record.getMessage()


logging.getLogger("torch.utils._pytree").addFilter(_drop_torchao_enum_notes)
# PEFT asks every model it wraps for the deprecated `is_gradient_checkpointing` property.
warnings.filterwarnings(
    "ignore",
    message="`is_gradient_checkpointing` is deprecated",
    category=FutureWarning,
    module="transformers.modeling_utils",
)

if TYPE_CHECKING:
    from apps.engine.config import (
        DEFAULT_MODEL_KEY,
        MODEL_TABLE,
        EngineConfig,
        ModelEntry,
        ModelSpec,
        configure_engine,
        engine_config,
        model_keys,
        specs_from_env,
    )
    from apps.engine.embedding import (
        ImageAnalysis,
        analyse_image,
        cell_embeddings,
        default_batch_size,
        embed_crop,
        embed_image,
        embed_images,
        embed_texts,
        embed_texts_multi,
        warm_up,
    )
    from apps.engine.gradeclip import METHODS, explanation_maps, gradeclip_maps
    from apps.engine.images import (
        CELL_VIEWS,
        GRID_SHORT_CELLS,
        WHOLE_IMAGE_VIEWS,
        Box,
        Preprocess,
        cell_at,
        cell_box,
        crop_box,
        grid_boxes,
        grid_cell_at,
        load_image,
        painting_grid,
    )
    from apps.engine.overlay import render_overlay
    from apps.engine.registry import (
        ADAPTER_LOADED,
        ADAPTER_MISSING,
        ADAPTER_NONE,
        LoadedModel,
        ModelLoadError,
        ModelRegistry,
        UnknownModelError,
        configure,
        get_registry,
    )

_EXPORTS = {
    "EngineConfig": "config",
    "model_keys": "config",
    "engine_config": "config",
    "configure_engine": "config",
    "DEFAULT_MODEL_KEY": "config",
    "MODEL_TABLE": "config",
    "ModelEntry": "config",
    "ModelSpec": "config",
    "specs_from_env": "config",
    "ImageAnalysis": "embedding",
    "analyse_image": "embedding",
    "CELL_VIEWS": "images",
    "cell_embeddings": "embedding",
    "default_batch_size": "embedding",
    "embed_crop": "embedding",
    "embed_image": "embedding",
    "embed_images": "embedding",
    "embed_texts": "embedding",
    "embed_texts_multi": "embedding",
    "warm_up": "embedding",
    "METHODS": "gradeclip",
    "explanation_maps": "gradeclip",
    "gradeclip_maps": "gradeclip",
    "Box": "images",
    "GRID_SHORT_CELLS": "images",
    "WHOLE_IMAGE_VIEWS": "images",
    "grid_boxes": "images",
    "grid_cell_at": "images",
    "painting_grid": "images",
    "Preprocess": "images",
    "cell_at": "images",
    "cell_box": "images",
    "crop_box": "images",
    "load_image": "images",
    "render_overlay": "overlay",
    "ADAPTER_LOADED": "registry",
    "ADAPTER_MISSING": "registry",
    "ADAPTER_NONE": "registry",
    "LoadedModel": "registry",
    "ModelLoadError": "registry",
    "ModelRegistry": "registry",
    "UnknownModelError": "registry",
    "configure": "registry",
    "get_registry": "registry",
}

__all__ = [
    "ADAPTER_LOADED",
    "ADAPTER_MISSING",
    "ADAPTER_NONE",
    "CELL_VIEWS",
    "DEFAULT_MODEL_KEY",
    "GRID_SHORT_CELLS",
    "METHODS",
    "MODEL_TABLE",
    "WHOLE_IMAGE_VIEWS",
    "Box",
    "EngineConfig",
    "ImageAnalysis",
    "LoadedModel",
    "ModelEntry",
    "ModelLoadError",
    "ModelRegistry",
    "ModelSpec",
    "Preprocess",
    "UnknownModelError",
    "analyse_image",
    "cell_at",
    "cell_box",
    "cell_embeddings",
    "configure",
    "configure_engine",
    "crop_box",
    "default_batch_size",
    "embed_crop",
    "embed_image",
    "embed_images",
    "embed_texts",
    "embed_texts_multi",
    "engine_config",
    "explanation_maps",
    "get_registry",
    "gradeclip_maps",
    "grid_boxes",
    "grid_cell_at",
    "load_image",
    "model_keys",
    "painting_grid",
    "render_overlay",
    "specs_from_env",
    "warm_up",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
