"""Latency of the worker's model calls on a real painting with a ViT-B/32-shaped CLIP.

Times `gradeclip_maps` (one image, several sentences, one forward + one backward pass; also
with the sentences' stored embeddings instead of their text, as the worker can do),
`analyse_image` (image + 7x7 cell embeddings from one forward) and `load_image`, as medians
over repeats after a warm-up. Random weights: only speed is measured here; see
`bench.heatmap_faithfulness` for whether the maps mean anything.

    python -m bench.gradeclip_latency --device cpu --texts 5 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from apps import engine
from bench.common import (
    artwork_paths,
    clock,
    corpus_sentences,
    random_vit_b32,
    take,
    train_tokenizer,
)


def median_seconds(run: Callable[[], object], repeats: int, device: str) -> dict[str, float]:
    """Median and fastest of `repeats` runs after a warm-up; on a machine shared with other
    jobs the fastest run is the better estimate of the idle latency."""
    run()
    seconds = []
    for _ in range(repeats):
        started = clock(device)
        run()
        seconds.append(clock(device) - started)
    return {"median": round(statistics.median(seconds), 3), "min": round(min(seconds), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    parser.add_argument("--texts", type=int, default=5, help="sentences explained at once")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    sentences = corpus_sentences()
    texts = take(sentences, args.texts)
    paintings = artwork_paths()
    if not paintings:
        raise SystemExit("No paintings: ../shared/artworks is missing.")
    painting = paintings[0]
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = train_tokenizer(sentences, Path(scratch) / "tokenizer")
        base, adapter = random_vit_b32(Path(scratch), tokenizer)
        registry = engine.ModelRegistry(
            [engine.ModelSpec("paintingclip", str(base), str(adapter))],
            device=args.device,
            dtype=args.dtype,
        )
        registry.get("paintingclip")
        image = engine.load_image(painting)
        stored = engine.embed_texts(texts, "paintingclip", registry=registry)
        report = {
            "device": args.device,
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
            "dtype": str(registry.dtype).removeprefix("torch."),
            "torch_threads": torch.get_num_threads(),
            "painting": painting.name,
            "painting_size": image.size,
            "texts": args.texts,
            "load_average_before": [round(v, 2) for v in os.getloadavg()],
            "load_image_s": median_seconds(
                lambda: engine.load_image(painting), args.repeats, "cpu"
            ),
            "analyse_image_s": median_seconds(
                lambda: engine.analyse_image(image, "paintingclip", registry=registry),
                args.repeats,
                args.device,
            ),
            "gradeclip_s": median_seconds(
                lambda: engine.gradeclip_maps(image, texts, "paintingclip", registry=registry),
                args.repeats,
                args.device,
            ),
            "gradeclip_stored_embeddings_s": median_seconds(
                lambda: engine.gradeclip_maps(image, stored, "paintingclip", registry=registry),
                args.repeats,
                args.device,
            ),
            "gradeclip_keep_aspect_s": median_seconds(
                lambda: engine.gradeclip_maps(
                    image, texts, "paintingclip", keep_aspect=True, registry=registry
                ),
                args.repeats,
                args.device,
            ),
        }
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    for key, value in report.items():
        print(f"{key:30s} {value}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
