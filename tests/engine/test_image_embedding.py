"""Image, crop and cell embeddings against transformers' own vision forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from apps import engine
from tests.engine.conftest import TinyClip
from tests.engine.test_images import noise


def hf_vision(tiny_clip: TinyClip, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
    """(image embedding [D], projected patch tokens [4, 4, D]) computed with plain transformers."""
    model = CLIPModel.from_pretrained(tiny_clip.base).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip.base)
    pixel_values = processor(images=image, return_tensors="pt").pixel_values
    with torch.inference_mode():
        features = model.get_image_features(pixel_values=pixel_values)
        hidden = features.last_hidden_state[0, 1:]
        patches = model.visual_projection(model.vision_model.post_layernorm(hidden))
    return features.pooler_output[0], patches.reshape(4, 4, -1)


def test_embed_image_matches_get_image_features(
    tiny_clip: TinyClip, registry: engine.ModelRegistry
) -> None:
    image = noise(150, 97)
    vector = engine.embed_image(image, "clip", registry=registry)
    expected, _ = hf_vision(tiny_clip, image)
    assert vector.shape == (24,)
    assert vector.dtype == np.float32
    np.testing.assert_allclose(vector, F.normalize(expected, dim=-1), atol=1e-5)


def test_cells_are_pooled_projected_patch_tokens(
    tiny_clip: TinyClip, registry: engine.ModelRegistry
) -> None:
    image = noise(97, 150, seed=1)
    _, patches = hf_vision(tiny_clip, image)
    per_patch = engine.cell_embeddings(image, "clip", grid=(4, 4), registry=registry)
    assert per_patch.shape == (4, 4, 24)
    np.testing.assert_allclose(per_patch, F.normalize(patches, dim=-1), atol=1e-5)

    quarters = engine.cell_embeddings(image, "clip", grid=(2, 2), registry=registry)
    top_right = patches[0:2, 2:4].reshape(4, -1).mean(0)
    np.testing.assert_allclose(quarters[0, 1], F.normalize(top_right, dim=-1), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(quarters, axis=-1), 1.0, atol=1e-6)


def test_analyse_image_equals_separate_calls(registry: engine.ModelRegistry) -> None:
    image = noise(120, 80, seed=2)
    analysis = engine.analyse_image(image, "paintingclip", (3, 3), registry=registry)
    np.testing.assert_allclose(
        analysis.embedding, engine.embed_image(image, "paintingclip", registry=registry), atol=1e-6
    )
    np.testing.assert_allclose(
        analysis.cells,
        engine.cell_embeddings(image, "paintingclip", (3, 3), registry=registry),
        atol=1e-6,
    )
    assert analysis.cells.shape == (3, 3, 24)
    clip_vector = engine.embed_image(image, "clip", registry=registry)
    assert not np.allclose(analysis.embedding, clip_vector, atol=1e-3)


def test_embed_crop_encodes_the_region_afresh(registry: engine.ModelRegistry) -> None:
    image = noise(200, 120, seed=3)
    box = engine.cell_box(image.size, 1, 1, (4, 4), registry.get("clip").preprocess)
    region = image.crop(tuple(round(v) for v in box))
    np.testing.assert_allclose(
        engine.embed_crop(image, box, "clip", registry=registry),
        engine.embed_image(region, "clip", registry=registry),
        atol=1e-6,
    )
    clipped = engine.embed_crop(image, (-50, -50, 100, 60), "clip", registry=registry)
    np.testing.assert_allclose(
        clipped, engine.embed_image(image.crop((0, 0, 100, 60)), "clip", registry=registry)
    )
    with pytest.raises(ValueError, match="does not overlap"):
        engine.embed_crop(image, (250, 0, 300, 50), "clip", registry=registry)
