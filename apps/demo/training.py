"""Train the demo's tiny CLIP and its "PaintingCLIP" LoRA adapter on the procedural world.

Real CLIP weights are unreachable offline, so the product runs on a model trained here, through
the same code path as the real one: a genuine ``transformers.CLIPModel`` (ViT with 32-px patches
at 224 px, so a 7x7 grid like ViT-B/32) with a CLIP-format tokenizer and image processor, plus a
PEFT LoRA adapter on the two projections like the real PaintingCLIP.

Contrastive terms, all against captions written by the corpus grammar:

* whole image (CLS embedding) against a sentence about one of its visible objects;
* object crop against a sentence about that object (what region search embeds);
* patch cells (patch tokens -> ``post_layernorm`` -> ``visual_projection``, exactly the engine's
  cell path) pooled over an object's cells, and a single one of its cells, against the same
  sentence, so grid-cell search and Grad-ECLIP maps are grounded.

Targets are soft (see ``data.match_weights``). Because the CPU budget is small, cheap auxiliary
heads (discarded after training) add dense supervision: the kind and colour at every cell, the
kinds present from the CLS token, the kind of each crop. They teach the backbone what is where
far faster than a single caption per image would.

The adapter trains only LoRA weights on the projections, so the frozen backbone features of the
painterly and plain scenes and the frozen text features of a caption pool are computed once.

Whole paintings reach the model in the engine's keep-aspect view (non-square patch grids with
interpolated position embeddings, `engine.images.Preprocess.aspect_pixel_values`). A share of
the whole-image batches (``aspect_share`` for the base, ``adapter_aspect_share`` for the
adapter) are keep-aspect banks of landscape and portrait scenes (`data.ASPECT_GRIDS`), so the
projections, and the backbone when its share is above zero, learn that view too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from tqdm import tqdm
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

from apps.demo.data import (
    ASPECT_GRIDS,
    COLOUR_INDEX,
    KIND_INDEX,
    Bank,
    Batch,
    build_aspect_bank,
    build_banks,
    normalise,
    sample_batch,
    write_caption,
)
from apps.demo.grammar import distractor_sentence, object_sentence, vocabulary_texts
from apps.demo.scenes import TRAIN_SEEDS, generate_scene
from apps.demo.tokenizer import save_clip_tokenizer, train_bpe


@dataclass(frozen=True)
class TrainConfig:
    """Model size, data size and schedule; the defaults are the shipped demo model."""

    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    projection_dim: int = 128
    bpe_vocab: int = 1024
    scenes: int = 3500
    steps: int = 1100
    batch: int = 64
    crop_batch: int = 48
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 30
    aux_weight: float = 1.0
    pointing_weight: float = 0.5
    pair_captions: int = 16
    distractors: int = 32
    aspect_share: float = 0.3
    bf16: bool = True
    adapter_scenes: int = 800
    adapter_steps: int = 1500
    adapter_batch: int = 128
    adapter_lr: float = 3e-3
    adapter_plain_share: float = 0.25
    adapter_keep_weight: float = 3.0
    adapter_aspect_share: float = 0.5
    lora_r: int = 16
    lora_alpha: int = 32
    threads: int = 2


TINY = TrainConfig(
    vision_hidden=32,
    vision_layers=1,
    vision_heads=2,
    text_hidden=32,
    text_layers=1,
    text_heads=2,
    projection_dim=16,
    bpe_vocab=300,
    scenes=12,
    steps=2,
    batch=4,
    crop_batch=4,
    warmup=1,
    bf16=False,
    adapter_scenes=6,
    adapter_steps=2,
    adapter_batch=4,
)


class AuxHeads(torch.nn.Module):
    """Linear probes used only during training: cell kind/colour, CLS kinds, crop kind."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.cell_kind = torch.nn.Linear(hidden, len(KIND_INDEX) + 1)
        self.cell_colour = torch.nn.Linear(hidden, len(COLOUR_INDEX) + 1)
        self.kinds = torch.nn.Linear(hidden, len(KIND_INDEX))


def train_demo_model(
    seed: int = 0, out_dir: Path | str = "apps/demo/weights", config: TrainConfig | None = None
) -> dict:
    """Train base CLIP and adapter; write ``clip/`` and ``paintingclip-lora/`` under ``out_dir``.

    Returns a report (timings, parameter counts, final losses) that is also saved as
    ``training_report.json`` next to the weights.
    """
    cfg = config or TrainConfig()
    out = Path(out_dir)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    started = time.perf_counter()

    base_seeds = _seed_ranges(seed, cfg)[0]
    tokenizer = build_tokenizer(base_seeds, cfg.bpe_vocab)
    image_processor = CLIPImageProcessor()
    model = build_model(cfg, tokenizer)

    whole, crops = build_banks(base_seeds, painterly=False, processor=image_processor, rng=rng)
    aspect: list[Bank] = []
    for k, grid in enumerate(ASPECT_GRIDS if cfg.aspect_share > 0 else ()):
        bank = build_aspect_bank(base_seeds[k :: len(ASPECT_GRIDS)], False, grid, image_processor)
        if len(bank):
            aspect.append(bank)
    data_s = time.perf_counter() - started
    base_loss = train_base(model, tokenizer, whole, crops, cfg, rng, aspect)
    base_s = time.perf_counter() - started
    save_base(model, tokenizer, image_processor, out / "clip", seed)

    report = {
        "seed": seed,
        "config": asdict(cfg),
        "base_seeds": [base_seeds.start, base_seeds.stop],
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "base_loss": round(base_loss, 4),
        "data_seconds": round(data_s, 1),
        "base_seconds": round(base_s, 1),
        "torch_threads": cfg.threads,
    }
    report |= train_demo_adapter(seed, out, cfg)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    (out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def train_demo_adapter(
    seed: int = 0, out_dir: Path | str = "apps/demo/weights", config: TrainConfig | None = None
) -> dict:
    """Train the "PaintingCLIP" LoRA on the base saved in ``out_dir/clip``.

    It draws from its own random state (seeded by ``seed``), not from what base training left,
    so re-running it alone (``--adapter-only``) gives the adapter a full run would give.
    Returns the adapter's part of the training report.
    """
    cfg = config or TrainConfig()
    out = Path(out_dir)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(seed + 1)
    rng = random.Random(seed + 1)
    started = time.perf_counter()
    base = out / "clip"
    model = CLIPModel.from_pretrained(base).eval()
    tokenizer = CLIPTokenizer.from_pretrained(base)
    image_processor = CLIPImageProcessor.from_pretrained(base)
    adapter_seeds = _seed_ranges(seed, cfg)[1]
    adapter_loss, lora = train_adapter(model, tokenizer, image_processor, adapter_seeds, cfg, rng)
    lora_dir = out / "paintingclip-lora"
    lora.save_pretrained(lora_dir)
    _point_adapter_at_base(lora_dir)
    (lora_dir / "README.md").write_text(_ADAPTER_CARD.format(seed=seed))
    return {
        "adapter_seeds": [adapter_seeds.start, adapter_seeds.stop],
        "adapter_loss": round(adapter_loss, 4),
        "adapter_seconds": round(time.perf_counter() - started, 1),
    }


def update_adapter_report(out_dir: Path | str, cfg: TrainConfig, part: dict) -> dict:
    """After an adapter-only run: put its figures and settings into ``training_report.json``."""
    path = Path(out_dir) / "training_report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    report |= part
    report["config"] = report.get("config", {}) | {
        name: value for name, value in asdict(cfg).items() if name.startswith(("adapter_", "lora_"))
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _seed_ranges(seed: int, cfg: TrainConfig) -> tuple[range, range]:
    """Contiguous blocks of training seeds for the base model and for the adapter."""
    first = _first_seed(seed, cfg.scenes + cfg.adapter_scenes)
    base = range(first, first + cfg.scenes)
    return base, range(base.stop, base.stop + cfg.adapter_scenes)


def _first_seed(seed: int, count: int) -> int:
    """Start of a contiguous block of training seeds chosen by the run seed."""
    return (seed * 104_729) % (TRAIN_SEEDS.stop - count)


def build_tokenizer(seeds: range, bpe_vocab: int) -> CLIPTokenizer:
    """Train the BPE on the grammar's words and on sentences from the training scenes."""
    rng = random.Random(seeds.start)
    texts = vocabulary_texts()
    for seed in seeds[:400]:
        facts = generate_scene(seed).facts()
        texts += [object_sentence(o, facts, rng) for o in facts.objects]
        texts.append(distractor_sentence(rng))
    vocab, merges = train_bpe(texts, bpe_vocab)
    with tempfile.TemporaryDirectory() as tmp:
        save_clip_tokenizer(Path(tmp), vocab, merges)
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=77)


def vocab_and_merges(tokenizer: CLIPTokenizer) -> tuple[dict[str, int], list[str]]:
    """The tokenizer's BPE vocabulary and merges, for writing the classic CLIP files."""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return model["vocab"], merges


def build_model(cfg: TrainConfig, tokenizer: CLIPTokenizer) -> CLIPModel:
    """A randomly initialised CLIPModel sized by the config, wired to the tokenizer's ids."""
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": cfg.text_hidden,
        "intermediate_size": cfg.text_hidden * 4,
        "num_hidden_layers": cfg.text_layers,
        "num_attention_heads": cfg.text_heads,
        "max_position_embeddings": 77,
        "projection_dim": cfg.projection_dim,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = {
        "hidden_size": cfg.vision_hidden,
        "intermediate_size": cfg.vision_hidden * 4,
        "num_hidden_layers": cfg.vision_layers,
        "num_attention_heads": cfg.vision_heads,
        "image_size": 224,
        "patch_size": 32,
        "projection_dim": cfg.projection_dim,
    }
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=cfg.projection_dim)
    return CLIPModel(config)


def soft_contrastive(
    img: torch.Tensor, txt: torch.Tensor, weights: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE with soft multi-positive targets (rows: images, columns: texts)."""
    logits = scale * img @ txt.T
    rows = weights.sum(1) > 0
    cols = weights.sum(0) > 0
    w_r = weights[rows] / weights[rows].sum(1, keepdim=True)
    w_c = weights[:, cols] / weights[:, cols].sum(0, keepdim=True)
    loss_i = -(w_r * logits[rows].log_softmax(1)).sum(1).mean()
    loss_t = -(w_c * logits[:, cols].log_softmax(0)).sum(0).mean()
    return (loss_i + loss_t) / 2


def contrastive_loss(
    model: CLIPModel,
    whole_feats: tuple[torch.Tensor, torch.Tensor],
    crop_cls: torch.Tensor,
    text_pooled: torch.Tensor,
    batch: Batch,
    cell_lists: list[tuple[int, ...]],
    rng: random.Random,
) -> torch.Tensor:
    """The four contrastive terms from pre-projection features (shared by base and adapter).

    ``whole_feats`` is (CLS, patch tokens), both after ``post_layernorm``.
    """
    scale = model.logit_scale.exp().clamp(max=100)
    txt = F.normalize(model.text_projection(text_pooled), dim=-1)
    cls, patches = whole_feats
    img = F.normalize(model.visual_projection(cls), dim=-1)
    crop = F.normalize(model.visual_projection(crop_cls), dim=-1)
    projected = model.visual_projection(patches)
    rows = torch.arange(len(cell_lists))
    pooled = F.normalize(
        torch.stack([projected[b, list(c)].mean(0) for b, c in enumerate(cell_lists)]), dim=-1
    )
    single = F.normalize(projected[rows, [rng.choice(c) for c in cell_lists]], dim=-1)
    return (
        soft_contrastive(img, txt, batch.weights_whole, scale)
        + soft_contrastive(crop, txt, batch.weights_crop, scale)
        + soft_contrastive(pooled, txt, batch.weights_cell, scale)
        + soft_contrastive(single, txt, batch.weights_cell, scale)
    ) / 4


def aux_loss(
    heads: AuxHeads,
    whole_feats: tuple[torch.Tensor, torch.Tensor],
    crop_cls: torch.Tensor,
    labels: torch.Tensor,
    kinds_present: torch.Tensor,
    crop_kinds: torch.Tensor,
) -> torch.Tensor:
    """Dense supervision: kind/colour per cell, kinds present per image, kind per crop."""
    cls, patches = whole_feats
    kind_logits = heads.cell_kind(patches).flatten(0, 1)
    colour_logits = heads.cell_colour(patches).flatten(0, 1)
    return (
        F.cross_entropy(kind_logits, labels[:, 0].flatten())
        + F.cross_entropy(colour_logits, labels[:, 1].flatten())
        + F.binary_cross_entropy_with_logits(heads.kinds(cls), kinds_present)
        + F.cross_entropy(heads.kinds(crop_cls), crop_kinds)
    ) / 4


class LastBlockCapture(contextlib.AbstractContextManager):
    """Records, with gradients, what Grad-ECLIP reads at the last vision block: queries, keys,
    values and the attention output before ``out_proj`` (the engine hooks the same modules)."""

    def __init__(self, model: CLIPModel) -> None:
        self.attention = model.vision_model.encoder.layers[-1].self_attn
        self.tensors: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> LastBlockCapture:
        def record(name: str):
            def hook(module, args, output):
                self.tensors[name] = output

            return hook

        def record_input(module, args):
            self.tensors["attn_output"] = args[0]

        att = self.attention
        self._handles = [
            att.q_proj.register_forward_hook(record("q")),
            att.k_proj.register_forward_hook(record("k")),
            att.v_proj.register_forward_hook(record("v")),
            att.out_proj.register_forward_pre_hook(record_input),
        ]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()


def pointing_loss(
    model: CLIPModel,
    capture: LastBlockCapture,
    cls: torch.Tensor,
    text_pooled: torch.Tensor,
    cell_lists: list[tuple[int, ...]],
) -> torch.Tensor:
    """Make the Grad-ECLIP map of each focal caption put its mass on the focal object's cells.

    The map is computed exactly as the engine does (gradient of the image-text cosine at the
    class token's attention output, times patch values, times the min-max "loosened" query-key
    cosine per head, ReLU), but differentiably (``create_graph``), and the loss is the negative
    log of the share of the map inside the object's cells.
    """
    n = len(cell_lists)
    heads = capture.attention.num_heads
    txt = F.normalize(model.text_projection(text_pooled[:n]), dim=-1).detach()
    img = F.normalize(model.visual_projection(cls[:n]), dim=-1)
    similarity = (img * txt).sum(-1)
    attn_output = capture.tensors["attn_output"]
    (grad,) = torch.autograd.grad(similarity.sum(), attn_output, create_graph=True)
    grad = grad[:n, 0].float().unflatten(-1, (heads, -1))
    values = capture.tensors["v"][:n, 1:].float().unflatten(-1, (heads, -1))
    query = capture.tensors["q"][:n, :1].float().unflatten(-1, (heads, -1))
    keys = capture.tensors["k"][:n, 1:].float().unflatten(-1, (heads, -1))
    cosine = F.cosine_similarity(query, keys, dim=-1)
    low, high = cosine.amin(1, keepdim=True), cosine.amax(1, keepdim=True)
    loosened = (cosine - low) / (high - low).clamp_min(1e-6)
    heat = torch.relu((loosened * (grad[:, None] * values).sum(-1)).sum(-1))
    mask = torch.zeros_like(heat)
    for b, cells in enumerate(cell_lists):
        mask[b, list(cells)] = 1.0
    share = (heat * mask).sum(1) / (heat.sum(1) + 1e-6)
    return -torch.log(share + 1e-3).mean()


def vision_features(model: CLIPModel, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(CLS, patch tokens), both through ``post_layernorm``, before the projection.

    Position embeddings are interpolated to the input's patch grid, as the engine's keep-aspect
    view does; for the square 224x224 input transformers leaves them as they are.
    """
    hidden = model.vision_model(
        pixel_values=normalise(pixels), interpolate_pos_encoding=True
    ).last_hidden_state
    normed = model.vision_model.post_layernorm(hidden)
    return normed[:, 0].float(), normed[:, 1:].float()


def text_features(model: CLIPModel, tokenizer: CLIPTokenizer, texts: list[str]) -> torch.Tensor:
    """Text pooled output (end-of-text token) before the projection."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
    return model.text_model(
        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
    ).pooler_output.float()


def _autocast(enabled: bool) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def _kind_targets(bank: Bank, idx: list[int]) -> torch.Tensor:
    present = torch.zeros(len(idx), len(KIND_INDEX))
    for row, i in enumerate(idx):
        for obj in bank.objects[i]:
            present[row, KIND_INDEX[obj.kind]] = 1.0
    return present


def train_base(
    model: CLIPModel,
    tokenizer: CLIPTokenizer,
    whole: Bank,
    crops: Bank,
    cfg: TrainConfig,
    rng: random.Random,
    aspect: list[Bank] | None = None,
) -> float:
    """Train all weights of the base model; returns the mean loss of the last 20 steps.

    With keep-aspect banks in ``aspect``, a share ``cfg.aspect_share`` of the steps takes its
    whole images from one of them (crops stay square, in a pass of their own).
    """
    heads = AuxHeads(cfg.vision_hidden)
    model.train()
    params = [*model.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(cfg.warmup, cfg.steps))
    recent: list[float] = []
    bar = tqdm(range(cfg.steps), desc="base CLIP", unit="step")
    for _ in bar:
        bank = rng.choice(aspect) if aspect and rng.random() < cfg.aspect_share else whole
        batch = sample_batch(
            bank, crops, cfg.batch, cfg.crop_batch, rng, cfg.pair_captions, cfg.distractors
        )
        texts = [write_caption(caption, rng) for caption in batch.captions]
        n = cfg.batch
        with _autocast(cfg.bf16), LastBlockCapture(model) as capture:
            if bank is whole:
                pixels = torch.cat([whole.pixels[batch.whole_idx], crops.pixels[batch.crop_idx]])
                cls, patches = vision_features(model, pixels)
                crop_cls, cls, patches = cls[n:], cls[:n], patches[:n]
            else:
                crop_cls = vision_features(model, crops.pixels[batch.crop_idx])[0]
                # Last, so that the capture holds the whole images' tensors.
                cls, patches = vision_features(model, bank.pixels[batch.whole_idx])
            text_pooled = text_features(model, tokenizer, texts)
        feats = (cls, patches)
        cells = batch.cell_lists(bank)
        crop_kinds = torch.tensor([KIND_INDEX[crops.objects[j][0].kind] for j in batch.crop_idx])
        loss = contrastive_loss(model, feats, crop_cls, text_pooled, batch, cells, rng)
        loss = loss + cfg.pointing_weight * pointing_loss(model, capture, cls, text_pooled, cells)
        loss = loss + cfg.aux_weight * aux_loss(
            heads,
            feats,
            crop_cls,
            bank.labels[batch.whole_idx],
            _kind_targets(bank, batch.whole_idx),
            crop_kinds,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        recent = [*recent[-19:], loss.item()]
        bar.set_postfix(loss=f"{np.mean(recent):.3f}")
    model.eval()
    return float(np.mean(recent))


def _warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


_BASE_CARD = """# ArteFact demo CLIP (not a real CLIP)

A tiny `CLIPModel` trained offline by `python -m apps.demo.training --seed {seed}` on the
procedural demo world (`apps/demo/scenes.py`) with captions from `apps/demo/grammar.py`.
It only understands that world; it stands in for openai/clip-vit-base-patch32 so the product
runs through its real code path without network access.
"""

_ADAPTER_CARD = """# ArteFact demo PaintingCLIP adapter (LoRA)

LoRA (r=16, alpha=32) on `text_projection` and `visual_projection` of the demo CLIP in
`apps/demo/weights/clip`, trained by `python -m apps.demo.training --seed {seed}` on painterly
renderings of demo scenes mixed with plain ones. Demo data only.
"""


def save_base(
    model: CLIPModel,
    tokenizer: CLIPTokenizer,
    image_processor: CLIPImageProcessor,
    folder: Path,
    seed: int,
) -> None:
    """Save a folder that ``CLIPModel``/``CLIPProcessor.from_pretrained`` load like the real one.

    Besides the processor's own files it writes the classic ``vocab.json``/``merges.txt`` and
    ``preprocessor_config.json`` for loaders that read those.
    """
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    image_processor.save_pretrained(folder)
    save_clip_tokenizer(folder, *vocab_and_merges(tokenizer))
    (folder / "README.md").write_text(_BASE_CARD.format(seed=seed))


@dataclass
class FrozenSet:
    """One rendering style of the adapter scenes: banks, frozen features, caption pools."""

    whole: Bank
    crops: Bank
    cls: torch.Tensor
    patches: torch.Tensor
    crop_cls: torch.Tensor


@torch.no_grad()
def _frozen_vision(model: CLIPModel, bank: Bank, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    cls_parts, patch_parts = [], []
    for i in range(0, len(bank), 128):
        with _autocast(bf16):
            cls, patches = vision_features(model, bank.pixels[i : i + 128])
        cls_parts.append(cls)
        patch_parts.append(patches)
    return torch.cat(cls_parts), torch.cat(patch_parts)


@torch.no_grad()
def _caption_pool(
    model: CLIPModel, tokenizer: CLIPTokenizer, bank: Bank, variants: int, rng: random.Random
) -> tuple[torch.Tensor, list[list[int]]]:
    """Frozen text features of ``variants`` fresh captions per (item, object); row offsets."""
    texts, offsets = [], []
    for objects, scene in zip(bank.objects, bank.scenes, strict=True):
        offsets.append([len(texts) + k * variants for k in range(len(objects))])
        for obj in objects:
            texts += [object_sentence(obj, scene, rng) for _ in range(variants)]
    feats = [text_features(model, tokenizer, texts[i : i + 512]) for i in range(0, len(texts), 512)]
    return torch.cat(feats), offsets


def train_adapter(
    model: CLIPModel,
    tokenizer: CLIPTokenizer,
    processor: CLIPImageProcessor,
    seeds: range,
    cfg: TrainConfig,
    rng: random.Random,
):
    """Train a LoRA on both projections over painterly scenes mixed with plain ones.

    Besides the contrastive terms, a "keep" term holds the adapted embeddings of plain images
    and of all captions close to the base model's, so plain-scene retrieval does not suffer.
    A share ``cfg.adapter_aspect_share`` of the steps takes its whole images from keep-aspect
    banks of the same seeds (a share of them per grid of `ASPECT_GRIDS`; crops stay square).
    Returns (mean loss of the last 20 steps, the PEFT model).
    """
    variants = 3
    styles: dict[tuple[bool, tuple[int, int] | None], FrozenSet] = {}
    for painterly in (True, False):
        whole, crops = build_banks(seeds, painterly=painterly, processor=processor, rng=rng)
        cls, patches = _frozen_vision(model, whole, cfg.bf16)
        crop_cls = _frozen_vision(model, crops, cfg.bf16)[0]
        styles[painterly, None] = FrozenSet(whole, crops, cls, patches, crop_cls)
        if cfg.adapter_aspect_share > 0:
            for k, grid in enumerate(ASPECT_GRIDS):
                bank = build_aspect_bank(seeds[k :: len(ASPECT_GRIDS)], painterly, grid, processor)
                if len(bank):
                    cls, patches = _frozen_vision(model, bank, cfg.bf16)
                    styles[painterly, grid] = FrozenSet(bank, crops, cls, patches, crop_cls)
    # Both styles show the same scenes: a grid has a bank in both or in neither, and one
    # caption pool per view serves both.
    grids = [grid for grid in ASPECT_GRIDS if (True, grid) in styles]
    whole_pools = {
        view: _caption_pool(model, tokenizer, styles[True, view].whole, variants, rng)
        for view in (None, *grids)
    }
    crop_pool, crop_rows = _caption_pool(model, tokenizer, styles[True, None].crops, variants, rng)
    with torch.no_grad():
        distractor_pool = text_features(
            model, tokenizer, [distractor_sentence(rng) for _ in range(256)]
        )
    lora_config = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        target_modules=["text_projection", "visual_projection"],
        lora_dropout=0.0,
    )
    peft_model = get_peft_model(model, lora_config)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.adapter_lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(20, cfg.adapter_steps))
    recent: list[float] = []
    bar = tqdm(range(cfg.adapter_steps), desc="PaintingCLIP LoRA", unit="step")
    for _ in bar:
        painterly = rng.random() >= cfg.adapter_plain_share
        wide = bool(grids) and rng.random() < cfg.adapter_aspect_share
        view = rng.choice(grids) if wide else None
        style = styles[painterly, view]
        whole_pool, whole_rows = whole_pools[view]
        batch = sample_batch(
            style.whole,
            style.crops,
            cfg.adapter_batch,
            cfg.adapter_batch,
            rng,
            distractors=cfg.distractors,
        )
        rows = [
            whole_rows[i][k] + rng.randrange(variants)
            for i, k in zip(batch.whole_idx, batch.focal, strict=True)
        ]
        crop_text_rows = [crop_rows[j][0] + rng.randrange(variants) for j in batch.crop_idx]
        noise_rows = [rng.randrange(len(distractor_pool)) for _ in range(cfg.distractors)]
        text_pooled = torch.cat(
            [whole_pool[rows], crop_pool[crop_text_rows], distractor_pool[noise_rows]]
        )
        loss = contrastive_loss(
            model,
            (style.cls[batch.whole_idx], style.patches[batch.whole_idx]),
            style.crop_cls[batch.crop_idx],
            text_pooled,
            batch,
            batch.cell_lists(style.whole),
            rng,
        )
        keep = _drift(model.text_projection, text_pooled)
        if not painterly:
            keep = keep + _drift(model.visual_projection, style.cls[batch.whole_idx])
        loss = loss + cfg.adapter_keep_weight * keep
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        recent = [*recent[-19:], loss.item()]
        bar.set_postfix(loss=f"{np.mean(recent):.3f}")
    return float(np.mean(recent)), peft_model


def _drift(projection: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance between a LoRA-wrapped projection's output and its base layer's."""
    adapted = F.normalize(projection(features), dim=-1)
    with torch.no_grad():
        base = F.normalize(projection.base_layer(features), dim=-1)
    return (1 - (adapted * base).sum(-1)).mean()


def _point_adapter_at_base(lora_dir: Path) -> None:
    """Record the sibling base folder in the adapter config instead of an empty path."""
    path = lora_dir / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = "apps/demo/weights/clip"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("apps/demo/weights"))
    parser.add_argument("--steps", type=int, help="base training steps (default: config)")
    parser.add_argument("--scenes", type=int, help="base training scenes (default: config)")
    parser.add_argument("--adapter-steps", type=int, help="adapter steps (default: config)")
    parser.add_argument(
        "--aspect-share",
        type=float,
        help="share of base steps on keep-aspect views (default: config)",
    )
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke-test config")
    parser.add_argument(
        "--adapter-only",
        action="store_true",
        help="train only the LoRA, on the base model already in --out/clip",
    )
    args = parser.parse_args(argv)
    cfg = TINY if args.tiny else TrainConfig()
    overrides = {
        "steps": args.steps,
        "scenes": args.scenes,
        "adapter_steps": args.adapter_steps,
        "aspect_share": args.aspect_share,
    }
    cfg = TrainConfig(**{**asdict(cfg), **{k: v for k, v in overrides.items() if v is not None}})
    if args.adapter_only:
        part = train_demo_adapter(seed=args.seed, out_dir=args.out, config=cfg)
        report = update_adapter_report(args.out, cfg, part)
    else:
        report = train_demo_model(seed=args.seed, out_dir=args.out, config=cfg)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
