"""ArteFact's ML engine: CLIP / PaintingCLIP embeddings and Grad-ECLIP maps, without Django.

A host configures the models once, then calls the functions by model key:

    from apps import engine
    engine.configure(*engine.specs_from_env(os.environ))
    vectors = engine.embed_texts(sentences, "paintingclip")
    analysis = engine.analyse_image("painting.jpg", "clip")
    maps = engine.gradeclip_maps("painting.jpg", sentences[:5], "clip")

Every function also takes `registry=` to use a specific `ModelRegistry` instead of the default.
"""

from apps.engine.config import EngineConfig, ModelSpec, specs_from_env
from apps.engine.embedding import (
    ImageAnalysis,
    analyse_image,
    cell_embeddings,
    default_batch_size,
    embed_crop,
    embed_image,
    embed_texts,
    embed_texts_multi,
    warm_up,
)
from apps.engine.gradeclip import METHODS, explanation_maps, gradeclip_maps
from apps.engine.images import Box, Preprocess, cell_at, cell_box, crop_box, load_image
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

__all__ = [
    "ADAPTER_LOADED",
    "ADAPTER_MISSING",
    "ADAPTER_NONE",
    "METHODS",
    "Box",
    "EngineConfig",
    "ImageAnalysis",
    "LoadedModel",
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
    "crop_box",
    "default_batch_size",
    "embed_crop",
    "embed_image",
    "embed_texts",
    "embed_texts_multi",
    "explanation_maps",
    "get_registry",
    "gradeclip_maps",
    "load_image",
    "render_overlay",
    "specs_from_env",
    "warm_up",
]
