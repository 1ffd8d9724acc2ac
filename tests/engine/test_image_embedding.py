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
    analysis = engine.analyse_image(
        image, "paintingclip", view="centre", short_cells=3, registry=registry
    )
    np.testing.assert_allclose(
        analysis.embedding, engine.embed_image(image, "paintingclip", registry=registry), atol=1e-6
    )
    np.testing.assert_allclose(
        analysis.cells,
        engine.cell_embeddings(image, "paintingclip", (3, 3), registry=registry),
        atol=1e-6,
    )
    assert analysis.cells.shape == (3, 3, 24)
    preprocess = registry.get("clip").preprocess
    assert analysis.view_box == engine.crop_box(image.size, preprocess)
    assert analysis.cell_boxes[2][1] == engine.cell_box(image.size, 2, 1, (3, 3), preprocess)
    assert analysis.cell_under(19.9, 40) is None  # left of the centre square
    assert analysis.cell_under(20, 79.9) == (2, 0)
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


def test_keep_aspect_is_one_pass_with_interpolated_positions(
    tiny_clip: TinyClip, registry: engine.ModelRegistry
) -> None:
    image = noise(260, 120, seed=4)  # 64 px short side: 4 x 9 patches of 16 px, grid 4 x 9
    analysis = engine.analyse_image(
        image, "clip", view="keep_aspect", short_cells=4, registry=registry
    )
    model = CLIPModel.from_pretrained(tiny_clip.base).eval()
    resized = np.asarray(image.resize((144, 64), Image.Resampling.BICUBIC), dtype=np.float32)
    preprocess = registry.get("clip").preprocess
    pixels = (resized / 255 - np.array(preprocess.mean)) / np.array(preprocess.std)
    pixel_values = torch.from_numpy(pixels.transpose(2, 0, 1)[None].astype(np.float32))
    with torch.inference_mode():
        features = model.get_image_features(
            pixel_values=pixel_values, interpolate_pos_encoding=True
        )
        hidden = model.vision_model.post_layernorm(features.last_hidden_state[0, 1:])
        patches = model.visual_projection(hidden).reshape(4, 9, -1)
    np.testing.assert_allclose(
        analysis.embedding, F.normalize(features.pooler_output[0], dim=-1), atol=1e-5
    )
    np.testing.assert_allclose(analysis.cells, F.normalize(patches, dim=-1), atol=1e-5)
    assert analysis.view_box == (0.0, 0.0, 260.0, 120.0)
    assert analysis.cell_boxes == engine.grid_boxes(image.size, (4, 9))
    assert analysis.cell_under(0, 119.9) == (3, 0)
    assert analysis.cell_under(259.9, 0) == (0, 8)
    assert analysis.cell_under(260, 0) is None


def test_windows_average_square_windows(registry: engine.ModelRegistry) -> None:
    square = noise(90, 90, seed=5)
    one = engine.analyse_image(square, "clip", view="windows", short_cells=4, registry=registry)
    centre = engine.analyse_image(square, "clip", view="centre", short_cells=4, registry=registry)
    np.testing.assert_allclose(one.embedding, centre.embedding, atol=1e-5)
    np.testing.assert_allclose(one.cells, centre.cells, atol=1e-5)

    wide = noise(160, 80, seed=6)  # grid 4 x 8: windows at columns 0, 2 and 4
    seen = engine.analyse_image(wide, "clip", view="windows", short_cells=4, registry=registry)
    windows = [wide.crop((left, 0, left + 80, 80)) for left in (0, 40, 80)]
    vectors = [
        engine.analyse_image(w, "clip", view="centre", short_cells=4, registry=registry)
        for w in windows
    ]
    mean = np.mean([v.embedding for v in vectors], axis=0)
    np.testing.assert_allclose(seen.embedding, mean / np.linalg.norm(mean), atol=1e-5)
    np.testing.assert_allclose(seen.cells[:, 0], vectors[0].cells[:, 0], atol=1e-5)
    assert seen.cells.shape == (4, 8, 24)
    assert seen.cell_boxes == engine.grid_boxes(wide.size, (4, 8))


def test_letterbox_embeds_the_whole_image_on_the_mean_colour(
    registry: engine.ModelRegistry,
) -> None:
    image = noise(128, 64, seed=7)
    preprocess = registry.get("clip").preprocess
    fill = tuple(round(255 * v) for v in preprocess.mean)
    padded = Image.new("RGB", (64, 64), fill)  # the tiny model's square
    padded.paste(image.resize((64, 32), Image.Resampling.BICUBIC), (0, 16))
    seen = engine.analyse_image(image, "clip", view="letterbox", registry=registry)
    np.testing.assert_allclose(
        seen.embedding, engine.embed_image(padded, "clip", registry=registry), atol=1e-5
    )
    assert seen.cells.shape == (7, 14, 24)  # the keep-aspect grid
    with pytest.raises(ValueError, match="cells='letterbox'"):
        engine.analyse_image(image, "clip", view="letterbox", cells="letterbox", registry=registry)
