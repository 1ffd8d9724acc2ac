"""Do the heat maps point at what the model uses? Deletion and insertion AUC per method.

For each (image, sentence) pair and each method (Grad-ECLIP, the upstream ArteFact variant,
raw class-token attention, random), patches of the model's input are ranked by the map:
- deletion: remove the top-ranked patches first (replace them with the image's mean colour, or
  a blurred copy with `--fill blur`); a faithful map makes the image-text similarity S fall fast,
  so a LOW area under the S curve is good;
- insertion: start from the fully removed image and put the top-ranked patches back first;
  a faithful map makes S rise fast, so a HIGH area is good.
Curves have one point per patch count (0..P), x in [0, 1], area by the trapezoid rule. All
P + 1 images of a curve go through the model in one batch.

A model with random weights makes this meaningless, so the model is `--model-dir` (a CLIP
folder), by default the demo CLIP from apps/demo once built. Pairs come from `--pairs`, a JSON
Lines file of {"image": path, "text": sentence}; or `--demo-scenes N`, N held-out demo scenes,
each with a grammar sentence about each of up to `--texts` of its objects; or else the
paintings in ../shared/artworks, each with the corpus-sample sentences the model ranks highest
for it.

    python -m bench.heatmap_faithfulness --model-dir apps/demo/weights/clip --images 5 --texts 3
    python -m bench.heatmap_faithfulness --demo-scenes 100 --texts 2
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from apps import engine
from apps.engine.config import DEMO_BASE_MODEL
from bench.common import artwork_paths, corpus_sentences

MODEL_KEY = "model"


def demo_pairs(count: int, texts: int, folder: Path) -> dict[Path, list[str]]:
    """Held-out demo scenes saved under `folder`, each with a sentence per object (up to
    `texts`), written by the corpus grammar from the scene's ground truth."""
    from apps.demo.grammar import object_sentence
    from apps.demo.scenes import HELD_OUT_START, make_scene

    rng = random.Random(0)
    pairs = {}
    for seed in range(HELD_OUT_START + 20_000, HELD_OUT_START + 20_000 + count):
        image, scene = make_scene(seed)
        if not scene.objects:
            continue
        facts = scene.facts()
        path = folder / f"scene-{seed}.png"
        image.save(path)
        pairs[path] = [object_sentence(obj, facts, rng) for obj in facts.objects[:texts]]
    return pairs


def load_pairs(args: argparse.Namespace, registry: engine.ModelRegistry) -> dict[Path, list[str]]:
    """{image path: sentences}: from --pairs or --demo-scenes, else paintings x their best
    corpus sentences."""
    if args.demo_scenes:
        return demo_pairs(args.demo_scenes, args.texts, Path(tempfile.mkdtemp(prefix="scenes-")))
    if args.pairs:
        pairs: dict[Path, list[str]] = defaultdict(list)
        for line in Path(args.pairs).read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                pairs[Path(record["image"])].append(record["text"])
        return dict(list(pairs.items())[: args.images])
    sentences = corpus_sentences()[: args.pool]
    paintings = artwork_paths()[: args.images]
    if not sentences or not paintings:
        raise SystemExit("No --pairs given and ../shared (artworks, corpus sample) is missing.")
    vectors = engine.embed_texts(sentences, MODEL_KEY, registry=registry)
    pairs = {}
    for path in paintings:
        scores = vectors @ engine.embed_image(path, MODEL_KEY, registry=registry)
        pairs[path] = [sentences[i] for i in np.argsort(-scores)[: args.texts]]
    return pairs


def filled(image: Image.Image, model: engine.LoadedModel, fill: str) -> torch.Tensor:
    """The model input [3, H, W] with every pixel "removed": the mean colour or a blur."""
    pixels = torch.from_numpy(model.preprocess.pixel_values([image])[0])
    if fill == "mean":
        return pixels.mean(dim=(1, 2), keepdim=True).expand_as(pixels).clone()
    preprocess = model.preprocess
    crop = engine.crop_box(image.size, preprocess)
    view = image.crop(tuple(round(v) for v in crop)).resize(
        (preprocess.crop_width, preprocess.crop_height), resample=preprocess.resample
    )
    blurred = view.filter(ImageFilter.GaussianBlur(radius=8))
    return torch.from_numpy(preprocess.pixel_values([blurred])[0])


def curves(
    pixels: torch.Tensor,
    removed: torch.Tensor,
    ranking: np.ndarray,
    patch: int,
    grid: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion image batches [P + 1, 3, H, W] for patches in `ranking` order."""
    mask = torch.zeros(len(ranking) + 1, 1, *pixels.shape[1:])
    for step, index in enumerate(ranking, start=1):
        row, col = divmod(int(index), grid[1])
        mask[step:, :, row * patch : (row + 1) * patch, col * patch : (col + 1) * patch] = 1.0
    deletion = pixels * (1 - mask) + removed * mask
    insertion = removed * (1 - mask) + pixels * mask
    return deletion, insertion


def similarities(model: engine.LoadedModel, batch: torch.Tensor, text: np.ndarray) -> np.ndarray:
    clip = model.clip
    with torch.inference_mode():
        features = clip.get_image_features(pixel_values=batch.to(model.device, model.dtype))
        image = F.normalize(features.pooler_output.float(), dim=-1)
    return (image @ torch.from_numpy(text).to(image.device)).cpu().numpy()


def area(values: np.ndarray) -> float:
    x = np.linspace(0.0, 1.0, len(values))
    return float(np.sum((values[1:] + values[:-1]) * np.diff(x)) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_model = DEMO_BASE_MODEL if (DEMO_BASE_MODEL / "config.json").is_file() else None
    parser.add_argument("--model-dir", type=Path, default=default_model)
    parser.add_argument("--adapter-dir", type=Path, help="a LoRA adapter for the model")
    parser.add_argument("--pairs", type=Path, help='JSON Lines of {"image": ..., "text": ...}')
    parser.add_argument("--demo-scenes", type=int, help="use N held-out demo scenes as pairs")
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--texts", type=int, default=3, help="sentences per painting")
    parser.add_argument("--pool", type=int, default=2000, help="corpus sentences to rank")
    parser.add_argument("--fill", choices=["mean", "blur"], default="mean")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.model_dir is None:
        raise SystemExit("No --model-dir given and the demo model (apps/demo) is not built yet.")

    adapter = str(args.adapter_dir) if args.adapter_dir else None
    registry = engine.ModelRegistry(
        [engine.ModelSpec(MODEL_KEY, str(args.model_dir), adapter)], device=args.device
    )
    model = registry.get(MODEL_KEY)
    patch = model.patch_size
    grid = (model.preprocess.crop_height // patch, model.preprocess.crop_width // patch)
    scores: dict[str, dict[str, list[float]]] = {
        method: {"deletion": [], "insertion": []} for method in engine.METHODS
    }
    for path, texts in load_pairs(args, registry).items():
        image = engine.load_image(path)
        pixels = torch.from_numpy(model.preprocess.pixel_values([image])[0])
        removed = filled(image, model, args.fill)
        text_vectors = engine.embed_texts(texts, MODEL_KEY, registry=registry)
        for method in engine.METHODS:
            maps = engine.explanation_maps(
                image, texts, MODEL_KEY, method=method, seed=args.seed, registry=registry
            )
            for heat, text in zip(maps, text_vectors, strict=True):
                ranking = np.argsort(-heat.ravel(), kind="stable")
                deletion, insertion = curves(pixels, removed, ranking, patch, grid)
                both = similarities(model, torch.cat([deletion, insertion]), text)
                scores[method]["deletion"].append(area(both[: len(deletion)]))
                scores[method]["insertion"].append(area(both[len(deletion) :]))

    report = {
        "model": str(args.model_dir),
        "adapter": adapter,
        "fill": args.fill,
        "pairs": len(scores["random"]["deletion"]),
        "grid": grid,
        "methods": {
            method: {
                "deletion_auc": round(float(np.mean(s["deletion"])), 4),
                "insertion_auc": round(float(np.mean(s["insertion"])), 4),
            }
            for method, s in scores.items()
        },
    }
    print(f"{report['pairs']} image-sentence pairs, {grid[0]}x{grid[1]} patches, fill={args.fill}")
    print(f"{'method':12s} {'deletion AUC (lower is better)':>32s} {'insertion AUC (higher)':>24s}")
    for method, row in report["methods"].items():
        print(f"{method:12s} {row['deletion_auc']:>32.4f} {row['insertion_auc']:>24.4f}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
