"""Grad-ECLIP heat maps: which patches of an image support its similarity to a sentence.

Grad-ECLIP (Zhao et al., ICML 2024, "Gradient-based Visual Explanation for Transformer-based
CLIP") explains the cosine similarity S between the image and text embeddings through one
attention block of the vision tower (the last by default). Write the block's attention output
at the class token, before the output projection, as o (all heads concatenated, C channels);
per head h it is o_h = sum_i softmax_i(q_h . k_i,h) v_i,h. The map over patches i is

    H_i = ReLU( sum_h sum_{c in head h} (dS/do_c) * v_i,c * lambda_h,i )

- dS/do_c, the gradient at the class token's attention output, weighs the channels;
- v_i,c is patch i's value vector (channel c belongs to head h);
- lambda_h,i is the paper's "loosened" spatial weight: instead of the sparse softmax, the cosine
  between the class token's query and patch i's key, computed per head over that head's
  channels and min-max normalised over the patches (the class token itself is not a patch and
  is left out of the normalisation). Each head's lambda weighs that head's channels only.
The ReLU comes after summing all channels, so heads can cancel. Each map is finally min-max
normalised to [0, 1] on the patch grid.

One forward and one backward pass explain T sentences: the blocks before the explained one run
once, their output is expanded into T copies, and S_1 + ... + S_T is differentiated. Copy t only
reaches S_t, so each copy's gradient is exactly the single-sentence gradient.

Baselines for the faithfulness benchmark (`method=`):
- "artefact": the upstream ArteFact variant: gradient of the whole block's OUTPUT at the class
  token (after the MLP and residuals) instead of the attention output, dotted with the patch
  values, times the softmax attention of the class token averaged over heads, times the min-max
  cosine of the head-averaged query and keys. (Upstream also recomputes q, k, v from the block
  input without its layer norm; here the block's real q, k, v are used so that only the method
  differs.)
- "attention": the class token's softmax attention to each patch, averaged over heads.
- "random": uniform noise (seeded), the floor every method must beat.

Works on merged models and on PEFT-wrapped ones (LoRA only changes which weights the
projections hold; the hooks sit on the attention block).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from apps.engine.embedding import embed_texts
from apps.engine.images import ImageInput, load_image
from apps.engine.registry import LoadedModel, ModelRegistry, get_registry

METHODS = ("gradeclip", "artefact", "attention", "random")


def gradeclip_maps(
    image: ImageInput,
    texts: Sequence[str] | np.ndarray,
    model_key: str,
    *,
    layer: int = -1,
    keep_aspect: bool = False,
    short_side: int | None = None,
    registry: ModelRegistry | None = None,
) -> np.ndarray:
    """Grad-ECLIP maps float32 [T, H, W] in [0, 1], one per text, on the patch grid.

    `texts` are sentences, or their embeddings [T, D] from this model (as the corpus stores
    them), which skips the text encoder: for a handful of sentences it costs more than the
    vision side.

    By default the map covers the model's centre crop (`images.crop_box` gives it in image
    pixels). `keep_aspect=True` explains the whole image instead: it is resized so its shorter
    side is `short_side` pixels (default: the model's crop size; use multiples of it for finer
    maps), both sides rounded to patch multiples, with interpolated position embeddings.
    """
    return explanation_maps(
        image,
        texts,
        model_key,
        method="gradeclip",
        layer=layer,
        keep_aspect=keep_aspect,
        short_side=short_side,
        registry=registry,
    )


def explanation_maps(
    image: ImageInput,
    texts: Sequence[str] | np.ndarray,
    model_key: str,
    *,
    method: str = "gradeclip",
    layer: int = -1,
    keep_aspect: bool = False,
    short_side: int | None = None,
    seed: int = 0,
    registry: ModelRegistry | None = None,
) -> np.ndarray:
    """Maps [T, H, W] in [0, 1] from `method` (one of METHODS); see the module docstring."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}.")
    if len(texts) == 0:
        raise ValueError("At least one text is needed.")
    registry = get_registry(registry)
    model = registry.get(model_key)
    picture = load_image(image)
    preprocess = model.preprocess
    if keep_aspect:
        side = short_side or min(preprocess.crop_height, preprocess.crop_width)
        pixels = preprocess.aspect_pixel_values(picture, side, model.patch_size)
    else:
        pixels = preprocess.pixel_values([picture])
    pixel_values = torch.from_numpy(pixels)
    grid = (pixel_values.shape[2] // model.patch_size, pixel_values.shape[3] // model.patch_size)

    if method == "random":
        generator = torch.Generator().manual_seed(seed)
        heat = torch.rand((len(texts), grid[0] * grid[1]), generator=generator)
    else:
        if isinstance(texts, np.ndarray):
            text_embeds = F.normalize(torch.from_numpy(texts).float(), dim=-1)
        else:
            text_embeds = torch.from_numpy(embed_texts(texts, model_key, registry=registry))
        capture = _explain_block(model, pixel_values, text_embeds, layer, keep_aspect)
        heat = {
            "gradeclip": _gradeclip,
            "artefact": _artefact_variant,
            "attention": _cls_attention,
        }[method](capture)
    return _unit_range(heat).reshape(len(texts), *grid).cpu().numpy()


@dataclass(frozen=True)
class _BlockCapture:
    """What one forward + backward pass records at the explained block, for T copies:
    queries/keys/values [T, N, C] (token 0 is the class token) and the gradients of
    S_1 + ... + S_T w.r.t. the attention output before its projection and w.r.t. the block
    output, both [T, N, C]."""

    queries: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor
    attn_output_grad: torch.Tensor
    block_output_grad: torch.Tensor
    num_heads: int

    def heads(self, tensor: torch.Tensor) -> torch.Tensor:
        """[T, N, C] -> [T, N, heads, head_dim]."""
        return tensor.unflatten(-1, (self.num_heads, -1))


def _explain_block(
    model: LoadedModel,
    pixel_values: torch.Tensor,
    text_embeds: torch.Tensor,
    layer: int,
    interpolate: bool,
) -> _BlockCapture:
    clip = model.clip
    vision = clip.vision_model
    blocks = vision.encoder.layers
    if not -len(blocks) <= layer < len(blocks):
        raise ValueError(f"layer={layer} is outside the {len(blocks)} vision blocks.")
    index = layer % len(blocks)
    attention = blocks[index].self_attn
    text_embeds = text_embeds.to(model.device)

    captured: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            captured[name] = output.detach().float()

        return hook

    def attention_output_as_leaf(module: torch.nn.Module, args: tuple) -> tuple:
        # The gradient must stop here: make the pre-projection attention output a leaf.
        leaf = args[0].detach().requires_grad_(True)
        captured["attn_output"] = leaf
        return (leaf, *args[1:])

    pixel_values = pixel_values.to(model.device, model.dtype)
    with torch.no_grad():
        hidden = vision.embeddings(pixel_values, interpolate_pos_encoding=interpolate)
        hidden = vision.pre_layrnorm(hidden)
        for block in blocks[:index]:
            hidden = block(hidden, None)
    hidden = hidden.expand(len(text_embeds), -1, -1)

    handles = [
        attention.q_proj.register_forward_hook(record("queries")),
        attention.k_proj.register_forward_hook(record("keys")),
        attention.v_proj.register_forward_hook(record("values")),
        attention.out_proj.register_forward_pre_hook(attention_output_as_leaf),
    ]
    try:
        with torch.enable_grad():
            block_output = blocks[index](hidden, None)
            hidden = block_output
            for block in blocks[index + 1 :]:
                hidden = block(hidden, None)
            image_embeds = clip.visual_projection(vision.post_layernorm(hidden[:, 0]))
            similarity = (F.normalize(image_embeds.float(), dim=-1) * text_embeds).sum(-1)
            attn_grad, block_grad = torch.autograd.grad(
                similarity.sum(), [captured["attn_output"], block_output]
            )
    finally:
        for handle in handles:
            handle.remove()
    return _BlockCapture(
        queries=captured["queries"],
        keys=captured["keys"],
        values=captured["values"],
        attn_output_grad=attn_grad.float(),
        block_output_grad=block_grad.float(),
        num_heads=attention.num_heads,
    )


def _gradeclip(capture: _BlockCapture) -> torch.Tensor:
    grad = capture.heads(capture.attn_output_grad)[:, 0]  # [T, heads, d]
    values = capture.heads(capture.values)[:, 1:]  # [T, P, heads, d]
    query = capture.heads(capture.queries)[:, :1]  # [T, 1, heads, d]
    keys = capture.heads(capture.keys)[:, 1:]  # [T, P, heads, d]
    loosened = _unit_range(F.cosine_similarity(query, keys, dim=-1), dim=1)  # [T, P, heads]
    per_head = (grad[:, None] * values).sum(-1)  # [T, P, heads]
    return torch.relu((loosened * per_head).sum(-1))


def _artefact_variant(capture: _BlockCapture) -> torch.Tensor:
    grad = capture.block_output_grad[:, 0]  # [T, C]
    importance = (grad[:, None] * capture.values[:, 1:]).sum(-1)  # [T, P]
    query = capture.heads(capture.queries)[:, 0].mean(1)  # [T, d]
    keys = capture.heads(capture.keys)[:, 1:].mean(2)  # [T, P, d]
    similarity = _unit_range(F.cosine_similarity(query[:, None], keys, dim=-1), dim=1)
    return torch.relu(importance * _cls_attention(capture) * similarity)


def _cls_attention(capture: _BlockCapture) -> torch.Tensor:
    query = capture.heads(capture.queries)[:, 0]  # [T, heads, d]
    keys = capture.heads(capture.keys)  # [T, N, heads, d]
    scores = torch.einsum("thd,tnhd->thn", query, keys) * query.shape[-1] ** -0.5
    return scores.softmax(-1)[:, :, 1:].mean(1)  # [T, P]


def _unit_range(values: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Min-max normalise to [0, 1] along `dim`; a constant slice becomes all zeros."""
    low = values.amin(dim, keepdim=True)
    span = values.amax(dim, keepdim=True) - low
    return torch.where(span > 0, (values - low) / span.clamp_min(1e-12), torch.zeros_like(values))
