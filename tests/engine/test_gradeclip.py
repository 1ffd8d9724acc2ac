"""Grad-ECLIP against a reference written out by hand, batching, PEFT wrapping, overlays."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from apps import engine
from tests.engine.conftest import CROP, TinyClip, save_clip, tiny_config, write_tokenizer
from tests.engine.test_images import noise

TEXTS = ["the saint", "a dog of the painter", "red and gold", "x", "the sky"]


@pytest.fixture(scope="module")
def one_layer(tmp_path_factory: pytest.TempPathFactory) -> engine.ModelRegistry:
    """A CLIP whose vision tower has a single block, so the explained block is the whole tower."""
    root = tmp_path_factory.mktemp("one_layer")
    tokenizer = write_tokenizer(root / "tokenizer")
    config = tiny_config(tokenizer)
    config.vision_config.num_hidden_layers = 1
    torch.manual_seed(3)
    folder = save_clip(CLIPModel(config), tokenizer, root / "clip", CROP)
    return engine.ModelRegistry([engine.ModelSpec("one", str(folder))], device="cpu")


def hand_computed_gradeclip(folder: Path, image: Image.Image, text: str) -> np.ndarray:
    """Grad-ECLIP written out step by step with explicit tensors, one head and one patch at a
    time, from the paper's formula; shares no code with the engine."""
    model = CLIPModel.from_pretrained(folder).eval()
    processor = CLIPProcessor.from_pretrained(folder)
    vision = model.vision_model
    block = vision.encoder.layers[0]
    attn = block.self_attn
    heads, head_dim = attn.num_heads, attn.head_dim

    with torch.no_grad():
        pixel_values = processor(images=image, return_tensors="pt").pixel_values
        x = vision.pre_layrnorm(vision.embeddings(pixel_values))[0]  # [N, C]
        h = block.layer_norm1(x)
        q = h @ attn.q_proj.weight.T + attn.q_proj.bias
        k = h @ attn.k_proj.weight.T + attn.k_proj.bias
        v = h @ attn.v_proj.weight.T + attn.v_proj.bias
        head_outputs = []
        for head in range(heads):
            channels = slice(head * head_dim, (head + 1) * head_dim)
            scores = q[:, channels] @ k[:, channels].T / head_dim**0.5
            head_outputs.append(torch.softmax(scores, dim=-1) @ v[:, channels])
        attention_output = torch.cat(head_outputs, dim=-1)
        tokens = processor.tokenizer([text], return_tensors="pt")
        text_embedding = model.get_text_features(**tokens).pooler_output[0]

    o = attention_output.clone().requires_grad_(True)
    after_attention = x + o @ attn.out_proj.weight.T + attn.out_proj.bias
    out = after_attention + block.mlp(block.layer_norm2(after_attention))
    with torch.no_grad():  # the hand-written block must be the model's block
        expected = vision(pixel_values=pixel_values).last_hidden_state[0]
    torch.testing.assert_close(out.detach(), expected, atol=1e-5, rtol=1e-5)
    image_embedding = vision.post_layernorm(out[0]) @ model.visual_projection.weight.T
    similarity = F.cosine_similarity(image_embedding, text_embedding, dim=0)
    (grad,) = torch.autograd.grad(similarity, o)
    grad_cls = grad[0]

    patches = q.shape[0] - 1
    heat = torch.zeros(patches)
    for head in range(heads):
        channels = slice(head * head_dim, (head + 1) * head_dim)
        cosines = torch.stack(
            [F.cosine_similarity(q[0, channels], k[1 + i, channels], dim=0) for i in range(patches)]
        )
        lam = (cosines - cosines.min()) / (cosines.max() - cosines.min())
        for i in range(patches):
            heat[i] += lam[i] * (grad_cls[channels] * v[1 + i, channels]).sum()
    heat = torch.relu(heat)
    heat = (heat - heat.min()) / (heat.max() - heat.min())
    side = int(patches**0.5)
    return heat.reshape(side, side).numpy()


def test_matches_the_hand_computed_reference(one_layer: engine.ModelRegistry) -> None:
    image = noise(90, 70, seed=5)
    folder = Path(one_layer.specs["one"].base)
    for text in TEXTS[:2]:
        expected = hand_computed_gradeclip(folder, image, text)
        maps = engine.gradeclip_maps(image, [text], "one", registry=one_layer)
        assert maps.shape == (1, 4, 4)
        assert maps.dtype == np.float32
        np.testing.assert_allclose(maps[0], expected, atol=1e-5)


def test_one_pass_for_many_texts_equals_single_runs(registry: engine.ModelRegistry) -> None:
    image = noise(100, 80, seed=6)
    for layer in (-1, 0):
        together = engine.gradeclip_maps(
            image, TEXTS, "paintingclip", layer=layer, registry=registry
        )
        assert together.shape == (len(TEXTS), 4, 4)
        assert together.min() == 0.0
        assert together.max() == 1.0
        for index, text in enumerate(TEXTS):
            alone = engine.gradeclip_maps(
                image, [text], "paintingclip", layer=layer, registry=registry
            )
            np.testing.assert_allclose(together[index], alone[0], atol=1e-5)
    assert not np.allclose(together[0], together[1])
    stored = engine.embed_texts(TEXTS, "paintingclip", registry=registry).astype(np.float16)
    from_vectors = engine.gradeclip_maps(image, stored, "paintingclip", layer=0, registry=registry)
    np.testing.assert_allclose(from_vectors, together, atol=5e-3)


def test_works_on_the_peft_wrapped_model(
    tiny_clip: TinyClip, registry: engine.ModelRegistry
) -> None:
    image = noise(64, 64, seed=7)
    wrapped = tiny_clip.registry(merge_adapters=False)
    for method in ("gradeclip", "artefact"):
        merged_maps = engine.explanation_maps(
            image, TEXTS[:3], "paintingclip", method=method, registry=registry
        )
        wrapped_maps = engine.explanation_maps(
            image, TEXTS[:3], "paintingclip", method=method, registry=wrapped
        )
        np.testing.assert_allclose(wrapped_maps, merged_maps, atol=1e-4)
    clip_maps = engine.gradeclip_maps(image, TEXTS[:3], "clip", registry=registry)
    assert not np.allclose(clip_maps, merged_maps, atol=1e-3)


def test_baselines_and_keep_aspect(registry: engine.ModelRegistry) -> None:
    image = noise(130, 70, seed=8)
    attention = engine.explanation_maps(
        image, TEXTS[:2], "clip", method="attention", registry=registry
    )
    np.testing.assert_allclose(attention[0], attention[1])  # text-independent
    first = engine.explanation_maps(image, TEXTS[:2], "clip", method="random", registry=registry)
    again = engine.explanation_maps(image, TEXTS[:2], "clip", method="random", registry=registry)
    np.testing.assert_array_equal(first, again)
    artefact = engine.explanation_maps(
        image, TEXTS[:2], "clip", method="artefact", registry=registry
    )
    gradeclip = engine.gradeclip_maps(image, TEXTS[:2], "clip", registry=registry)
    assert not np.allclose(artefact, gradeclip)
    for maps in (attention, first, artefact):
        assert maps.shape == (2, 4, 4)
        assert maps.min() >= 0.0
        assert maps.max() <= 1.0

    # 130x70 keeping aspect: shorter side 64 -> 119x64 -> 112x64 in 16 px patches.
    wide = engine.gradeclip_maps(image, TEXTS[:2], "clip", keep_aspect=True, registry=registry)
    assert wide.shape == (2, 4, 7)
    finer = engine.gradeclip_maps(
        image, TEXTS[:1], "clip", keep_aspect=True, short_side=128, registry=registry
    )
    assert finer.shape == (1, 8, 15)
    with pytest.raises(ValueError, match="outside the 2 vision blocks"):
        engine.gradeclip_maps(image, TEXTS[:1], "clip", layer=2, registry=registry)


def test_overlay_png_has_the_image_size(registry: engine.ModelRegistry) -> None:
    image = noise(150, 90, seed=9)
    heat = engine.gradeclip_maps(image, TEXTS[:1], "clip", registry=registry)[0]
    box = engine.crop_box(image.size, registry.get("clip").preprocess)
    png = engine.render_overlay(image, heat, box=box, alpha=0.6, colormap="viridis")
    rendered = Image.open(io.BytesIO(png))
    assert rendered.format == "PNG"
    assert rendered.size == image.size
    pixels, original = np.asarray(rendered.convert("RGB")), np.asarray(image)
    np.testing.assert_array_equal(pixels[:, :29], original[:, :29])  # outside the crop box
    assert not np.array_equal(pixels[:, 31:119], original[:, 31:119])

    untouched = Image.open(io.BytesIO(engine.render_overlay(image, heat, alpha=0.0)))
    np.testing.assert_array_equal(np.asarray(untouched), original)
    solid = Image.open(io.BytesIO(engine.render_overlay(image, np.ones((2, 2)), alpha=1.0)))
    assert solid.getpixel((0, 0)) == (252, 255, 164)  # the top of inferno
