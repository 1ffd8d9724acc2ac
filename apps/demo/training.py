"""Train the demo's tiny CLIP and its "PaintingCLIP" LoRA adapter on the procedural world.

Real CLIP weights are unreachable offline, so the product runs on a model trained here, through
the same code path as the real one: a genuine ``transformers.CLIPModel`` (ViT with 32-px patches
at 224 px, so a 7x7 grid like ViT-B/32) with a CLIP-format tokenizer and image processor, plus a
PEFT LoRA adapter on the two projections like the real PaintingCLIP.

Three contrastive signals, all against captions written by the corpus grammar:

* whole image (CLS embedding) against a sentence about one or two visible objects;
* object crop against a sentence about that object (what region search embeds);
* patch cells (patch tokens -> ``post_layernorm`` -> ``visual_projection``, exactly the engine's
  cell path) pooled over an object's cells, and a single one of its cells, against a sentence
  about it, so that grid-cell search and Grad-ECLIP maps are grounded.

Targets are soft: a caption is a full positive for an image showing all its (kind, colour)
pairs and a half positive when only the kinds match, so in-batch duplicates are not punished.

The adapter trains only the LoRA weights, and only the projections change, so the frozen
backbone features of painterly and plain scenes are computed once and the adapter trains on them.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from PIL import Image
from tqdm import tqdm
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizer,
)

from apps.demo.geometry import centre_cell, covered_cells, crop_around, to_model_box, visible_share
from apps.demo.grammar import (
    ObjectFacts,
    SceneFacts,
    distractor_sentence,
    object_sentence,
    pair_sentence,
    vocabulary_texts,
)
from apps.demo.scenes import TRAIN_SEEDS, generate_scene, render_painterly, render_plain
from apps.demo.tokenizer import save_clip_tokenizer, train_bpe

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TrainConfig:
    """Model size, data size and schedule; the defaults are the shipped demo model."""

    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_hidden: int = 128
    text_layers: int = 3
    text_heads: int = 4
    projection_dim: int = 128
    bpe_vocab: int = 1024
    scenes: int = 2500
    steps: int = 500
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 40
    adapter_scenes: int = 800
    adapter_steps: int = 600
    adapter_batch: int = 64
    adapter_lr: float = 2e-3
    adapter_plain_share: float = 0.3
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
    warmup=1,
    adapter_scenes=6,
    adapter_steps=2,
    adapter_batch=4,
)


@dataclass
class Bank:
    """Pre-processed model inputs (uint8, 224x224) and the objects each one shows.

    ``cells[i][k]`` lists the patch cells covered by ``objects[i][k]`` (empty for crops).
    """

    pixels: torch.Tensor
    scenes: list[SceneFacts] = field(default_factory=list)
    objects: list[tuple[ObjectFacts, ...]] = field(default_factory=list)
    cells: list[tuple[tuple[int, ...], ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.objects)


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

    first = _first_seed(seed, cfg.scenes + cfg.adapter_scenes)
    base_seeds = range(first, first + cfg.scenes)
    adapter_seeds = range(base_seeds.stop, base_seeds.stop + cfg.adapter_scenes)

    tokenizer = build_tokenizer(base_seeds, cfg.bpe_vocab)
    image_processor = CLIPImageProcessor()
    model = build_model(cfg, tokenizer)
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)

    t0 = time.perf_counter()
    whole, crops = build_banks(base_seeds, painterly=False, processor=image_processor, rng=rng)
    data_s = time.perf_counter() - t0
    base_loss = train_base(model, tokenizer, whole, crops, cfg, rng)
    parameters = sum(p.numel() for p in model.parameters())
    base_s = time.perf_counter() - started

    clip_dir = out / "clip"
    model.save_pretrained(clip_dir)
    processor.save_pretrained(clip_dir)
    # Also the classic files, for loaders that read vocab/merges or preprocessor_config.json.
    image_processor.save_pretrained(clip_dir)
    save_clip_tokenizer(clip_dir, *vocab_and_merges(tokenizer))
    _write_card(clip_dir, _BASE_CARD.format(seed=seed))

    t0 = time.perf_counter()
    adapter_loss, lora = train_adapter(model, tokenizer, image_processor, adapter_seeds, cfg, rng)
    adapter_s = time.perf_counter() - t0
    lora_dir = out / "paintingclip-lora"
    lora.save_pretrained(lora_dir)
    _point_adapter_at_base(lora_dir)
    _write_card(lora_dir, _ADAPTER_CARD.format(seed=seed))

    report = {
        "seed": seed,
        "config": asdict(cfg),
        "base_seeds": [base_seeds.start, base_seeds.stop],
        "adapter_seeds": [adapter_seeds.start, adapter_seeds.stop],
        "parameters": parameters,
        "vocab_size": len(tokenizer),
        "base_loss": round(base_loss, 4),
        "adapter_loss": round(adapter_loss, 4),
        "data_seconds": round(data_s, 1),
        "base_seconds": round(base_s, 1),
        "adapter_seconds": round(adapter_s, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "torch_threads": cfg.threads,
    }
    (out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _first_seed(seed: int, count: int) -> int:
    """Start of a contiguous block of training seeds chosen by the run seed."""
    span = TRAIN_SEEDS.stop - count
    return (seed * 104_729) % span


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


def build_banks(
    seeds: range, painterly: bool, processor: CLIPImageProcessor, rng: random.Random
) -> tuple[Bank, Bank]:
    """Render scenes and cache whole-image and object-crop model inputs with their objects."""
    whole, crops = Bank(torch.empty(0)), Bank(torch.empty(0))
    whole_parts: list[torch.Tensor] = []
    crop_parts: list[torch.Tensor] = []
    whole_imgs: list[Image.Image] = []
    crop_imgs: list[Image.Image] = []
    for seed in seeds:
        scene = generate_scene(seed)
        img = render_painterly(scene) if painterly else render_plain(scene)
        facts = scene.facts()
        visible: list[ObjectFacts] = []
        visible_cells: list[tuple[int, ...]] = []
        for obj, fact in zip(scene.objects, facts.objects, strict=True):
            box = to_model_box(obj.box, scene.width, scene.height)
            cells = covered_cells(box)
            if visible_share(box) >= 0.5 and centre_cell(box) is not None and cells:
                visible.append(fact)
                visible_cells.append(tuple(cells))
            margin = rng.uniform(0.05, 0.45)
            crop_imgs.append(img.crop(crop_around(obj.box, scene.width, scene.height, margin)))
            crops.scenes.append(facts)
            crops.objects.append((fact,))
            crops.cells.append(())
        if visible:
            whole_imgs.append(img)
            whole.scenes.append(facts)
            whole.objects.append(tuple(visible))
            whole.cells.append(tuple(visible_cells))
        # Convert as we go: full-size PIL images would otherwise pile up to gigabytes.
        for pending, parts in ((whole_imgs, whole_parts), (crop_imgs, crop_parts)):
            if len(pending) >= 128:
                parts.append(_to_uint8(pending, processor))
                pending.clear()
    whole.pixels = torch.cat([*whole_parts, _to_uint8(whole_imgs, processor)])
    crops.pixels = torch.cat([*crop_parts, _to_uint8(crop_imgs, processor)])
    return whole, crops


def _to_uint8(images: list[Image.Image], processor: CLIPImageProcessor) -> torch.Tensor:
    """Run the real image processor, then store its output compactly as uint8."""
    if not images:
        return torch.empty(0, 3, 224, 224, dtype=torch.uint8)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = processor(images=images, return_tensors="pt")["pixel_values"]
    return ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels.float() / 255 - mean) / std


@dataclass
class Batch:
    """One training batch: which bank items, the captions and who matches whom."""

    whole_idx: list[int]
    crop_idx: list[int]
    cell_lists: list[tuple[int, ...]]
    texts: list[str]
    weights_whole: torch.Tensor
    weights_crop: torch.Tensor
    weights_cell: torch.Tensor


def sample_batch(whole: Bank, crops: Bank, size: int, rng: random.Random) -> Batch:
    """Draw images and write fresh captions for them with the corpus grammar."""
    wi = [rng.randrange(len(whole)) for _ in range(size)]
    ci = [rng.randrange(len(crops)) for _ in range(size)]
    texts: list[str] = []
    text_facts: list[frozenset[tuple[str, str]]] = []
    focals: list[tuple[ObjectFacts, SceneFacts]] = []
    cell_lists: list[tuple[int, ...]] = []
    for i in wi:
        objs, scene = whole.objects[i], whole.scenes[i]
        k = rng.randrange(len(objs))
        focal = objs[k]
        if len(objs) >= 2 and rng.random() < 0.25:
            other = rng.choice([o for o in objs if o is not focal])
            texts.append(pair_sentence(focal, other, scene, rng))
            text_facts.append(frozenset({_fact(focal), _fact(other)}))
        else:
            texts.append(object_sentence(focal, scene, rng))
            text_facts.append(frozenset({_fact(focal)}))
        focals.append((focal, scene))
        cell_lists.append(whole.cells[i][k])
    for i in ci:
        (obj,) = crops.objects[i]
        texts.append(object_sentence(obj, crops.scenes[i], rng))
        text_facts.append(frozenset({_fact(obj)}))
    for focal, scene in focals:
        texts.append(object_sentence(focal, scene, rng))
        text_facts.append(frozenset({_fact(focal)}))
    cell_facts = [frozenset({_fact(focal)}) for focal, _ in focals]
    whole_facts = [frozenset(_fact(o) for o in whole.objects[i]) for i in wi]
    crop_facts = [frozenset({_fact(crops.objects[i][0])}) for i in ci]
    return Batch(
        wi,
        ci,
        cell_lists,
        texts,
        _weights(whole_facts, text_facts),
        _weights(crop_facts, text_facts),
        _weights(cell_facts, text_facts),
    )


def _fact(obj: ObjectFacts) -> tuple[str, str]:
    return obj.kind, obj.colour


def _weights(
    image_facts: list[frozenset[tuple[str, str]]], text_facts: list[frozenset[tuple[str, str]]]
) -> torch.Tensor:
    """1 where the image shows every (kind, colour) of the text, 0.5 where only the kinds match."""
    w = torch.zeros(len(image_facts), len(text_facts))
    for i, shown in enumerate(image_facts):
        kinds = {k for k, _ in shown}
        for j, said in enumerate(text_facts):
            if said <= shown:
                w[i, j] = 1.0
            elif {k for k, _ in said} <= kinds:
                w[i, j] = 0.5
    return w


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


def _cell_embeddings(
    projected_patches: torch.Tensor, cell_lists: list[tuple[int, ...]], rng: random.Random
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled embedding over each object's cells, and one of its cells on its own."""
    pooled, single = [], []
    for b, cells in enumerate(cell_lists):
        pooled.append(projected_patches[b, list(cells)].mean(0))
        single.append(projected_patches[b, rng.choice(cells)])
    return F.normalize(torch.stack(pooled), dim=-1), F.normalize(torch.stack(single), dim=-1)


def batch_loss(
    model: CLIPModel,
    whole_feats: tuple[torch.Tensor, torch.Tensor],
    crop_pooled: torch.Tensor,
    text_pooled: torch.Tensor,
    batch: Batch,
    rng: random.Random,
) -> torch.Tensor:
    """All four contrastive terms from pre-projection features (shared by base and adapter).

    ``whole_feats`` is (CLS after ``post_layernorm``, patch tokens after ``post_layernorm``).
    """
    scale = model.logit_scale.exp().clamp(max=100)
    txt = F.normalize(model.text_projection(text_pooled), dim=-1)
    cls, patches = whole_feats
    img = F.normalize(model.visual_projection(cls), dim=-1)
    crop = F.normalize(model.visual_projection(crop_pooled), dim=-1)
    pooled, single = _cell_embeddings(model.visual_projection(patches), batch.cell_lists, rng)
    return (
        soft_contrastive(img, txt, batch.weights_whole, scale)
        + soft_contrastive(crop, txt, batch.weights_crop, scale)
        + soft_contrastive(pooled, txt, batch.weights_cell, scale)
        + soft_contrastive(single, txt, batch.weights_cell, scale)
    ) / 4


def vision_features(model: CLIPModel, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(CLS, patch tokens), both through ``post_layernorm``, before the projection."""
    hidden = model.vision_model(pixel_values=_normalise(pixels)).last_hidden_state
    normed = model.vision_model.post_layernorm(hidden)
    return normed[:, 0], normed[:, 1:]


def text_features(model: CLIPModel, tokenizer: CLIPTokenizer, texts: list[str]) -> torch.Tensor:
    """Text pooled output (end-of-text token) before the projection."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
    return model.text_model(
        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
    ).pooler_output


def train_base(
    model: CLIPModel,
    tokenizer: CLIPTokenizer,
    whole: Bank,
    crops: Bank,
    cfg: TrainConfig,
    rng: random.Random,
) -> float:
    """Train all weights of the base model; returns the mean loss of the last 20 steps."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(cfg.warmup, cfg.steps))
    recent: list[float] = []
    bar = tqdm(range(cfg.steps), desc="base CLIP", unit="step")
    for _ in bar:
        batch = sample_batch(whole, crops, cfg.batch, rng)
        pixels = torch.cat([whole.pixels[batch.whole_idx], crops.pixels[batch.crop_idx]])
        cls, patches = vision_features(model, pixels)
        n = len(batch.whole_idx)
        loss = batch_loss(
            model,
            (cls[:n], patches[:n]),
            cls[n:],
            text_features(model, tokenizer, batch.texts),
            batch,
            rng,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
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


@torch.no_grad()
def _frozen_features(model: CLIPModel, bank: Bank) -> tuple[torch.Tensor, torch.Tensor]:
    cls_parts, patch_parts = [], []
    for i in range(0, len(bank), 128):
        cls, patches = vision_features(model, bank.pixels[i : i + 128])
        cls_parts.append(cls)
        patch_parts.append(patches)
    return torch.cat(cls_parts), torch.cat(patch_parts)


def train_adapter(
    model: CLIPModel,
    tokenizer: CLIPTokenizer,
    processor: CLIPImageProcessor,
    seeds: range,
    cfg: TrainConfig,
    rng: random.Random,
):
    """Train a LoRA on both projections over painterly scenes mixed with plain ones.

    Returns (mean loss of the last 20 steps, the PEFT model).
    """
    banks = {}
    for painterly in (True, False):
        whole, crops = build_banks(seeds, painterly=painterly, processor=processor, rng=rng)
        banks[painterly] = (
            whole,
            crops,
            _frozen_features(model, whole),
            _frozen_features(model, crops)[0],
        )
    lora_config = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        target_modules=["text_projection", "visual_projection"],
        lora_dropout=0.0,
    )
    peft_model = get_peft_model(model, lora_config)
    opt = torch.optim.AdamW(
        [p for p in peft_model.parameters() if p.requires_grad], lr=cfg.adapter_lr
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(20, cfg.adapter_steps))
    recent: list[float] = []
    bar = tqdm(range(cfg.adapter_steps), desc="PaintingCLIP LoRA", unit="step")
    for _ in bar:
        painterly = rng.random() >= cfg.adapter_plain_share
        whole, crops, (cls, patches), crop_cls = banks[painterly]
        batch = sample_batch(whole, crops, cfg.adapter_batch, rng)
        with torch.no_grad():
            text_pooled = text_features(model, tokenizer, batch.texts)
        loss = batch_loss(
            model,
            (cls[batch.whole_idx], patches[batch.whole_idx]),
            crop_cls[batch.crop_idx],
            text_pooled,
            batch,
            rng,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        recent = [*recent[-19:], loss.item()]
        bar.set_postfix(loss=f"{np.mean(recent):.3f}", painterly=int(painterly))
    return float(np.mean(recent)), peft_model


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


def _write_card(folder: Path, text: str) -> None:
    (folder / "README.md").write_text(text)


def _point_adapter_at_base(lora_dir: Path) -> None:
    """Record the sibling base folder in the adapter config instead of a temporary path."""
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
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke-test config")
    args = parser.parse_args(argv)
    cfg = TINY if args.tiny else TrainConfig()
    overrides = {
        "steps": args.steps,
        "scenes": args.scenes,
        "adapter_steps": args.adapter_steps,
    }
    cfg = TrainConfig(**{**asdict(cfg), **{k: v for k, v in overrides.items() if v is not None}})
    report = train_demo_model(seed=args.seed, out_dir=args.out, config=cfg)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
