"""How the model should see a whole painting: the demo model on held-out non-square scenes.

    python bench/whole_painting.py --count 300 [--aspects 2.0 0.5] [--ordinary 300]
        [--repeats 15] [--json]

For each view of `engine.WHOLE_IMAGE_VIEWS` (the whole-image embedding) and each view of
`engine.CELL_VIEWS` (the grid), on scenes generated at each `--aspect` (objects placed across
the whole canvas) and on the ordinary scenes of `bench/demo_quality.py`:

* `whole_out_top10`: for objects whose centre lies outside the processor's centre square,
  whether a sentence naming the object's kind is in the whole image's top 10;
* `whole_top10`: the same for every object;
* `whole_p10`: precision@10 of the whole image (as `apps.demo.quality`), wide scenes and
  ordinary scenes;
* `cell_out_top10` / `cell_top10`: the cell at the object's centre has a sentence naming its
  kind in its top 10 (objects outside the centre square, all objects); the centre grid has no
  cell there, which counts as a miss;
* `ms_3000px`: median time of the worker's model step (`analyse_image` on the reduced copy
  that `run_analysis` reads, 500 x 250 px) for a 3,000 x 1,500 px painting, on a
  ViT-B/32-shaped model with random weights (speed depends on shapes, not weights), and its
  ratio to the centre crop's.

With `--json` the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import CLIPTokenizer

from apps.demo.quality import WEIGHTS, CorpusIndex, Tally, demo_registry
from apps.demo.scenes import HELD_OUT_START, make_scene
from apps.engine import (
    CELL_VIEWS,
    WHOLE_IMAGE_VIEWS,
    ImageAnalysis,
    ModelRegistry,
    ModelSpec,
    analyse_image,
    cell_at,
    grid_cell_at,
)
from apps.engine.config import DEMO_BASE_MODEL
from bench.common import cpu_description, random_vit_b32

WIDE_SEEDS = HELD_OUT_START + 200_000
"""First seed of the non-square scenes (apart from the ordinary scenes' seeds)."""


def views(image, registry: ModelRegistry) -> dict[str, ImageAnalysis]:
    """Every view's analysis of `image` (letterbox: its embedding, keep-aspect cells)."""
    return {
        view: analyse_image(image, "clip", view=view, registry=registry)
        for view in WHOLE_IMAGE_VIEWS
    }


def non_square(
    index: CorpusIndex, registry: ModelRegistry, aspect: float, count: int
) -> dict[str, float]:
    preprocess = registry.get("clip").preprocess
    tallies: dict[str, Tally] = {}

    def add(name: str, value: float) -> None:
        tallies.setdefault(name, Tally()).add(value)

    for seed in range(WIDE_SEEDS, WIDE_SEEDS + count):
        image, scene = make_scene(seed, aspect=aspect)
        if not scene.objects:
            continue
        seen = views(image, registry)
        for view, analysis in seen.items():
            ranked = index.top(analysis.embedding, "clip", 10)
            add(f"whole_p10 {view}", index.precision(ranked, scene.kinds()))
            for obj in scene.objects:
                found = index.names(ranked, obj.kind)
                add(f"whole_top10 {view}", found)
                if cell_at(image.size, *obj.centre(), (7, 7), preprocess) is None:
                    add(f"whole_out_top10 {view}", found)
        for view in CELL_VIEWS:
            analysis = seen[view]
            for obj in scene.objects:
                outside = cell_at(image.size, *obj.centre(), (7, 7), preprocess) is None
                if view == "centre":
                    cell = cell_at(image.size, *obj.centre(), (7, 7), preprocess)
                else:
                    cell = grid_cell_at(image.size, *obj.centre(), analysis.cells.shape[:2])
                found = cell is not None and index.names(
                    index.top(analysis.cells[cell], "clip", 10), obj.kind
                )
                add(f"cell_top10 {view}", found)
                if outside:
                    add(f"cell_out_top10 {view}", found)
    result = {name: tally.rate() for name, tally in sorted(tallies.items())}
    result["objects_outside_centre"] = tallies[f"whole_out_top10 {WHOLE_IMAGE_VIEWS[0]}"].total
    return result


def ordinary(index: CorpusIndex, registry: ModelRegistry, count: int) -> dict[str, float]:
    tallies = {view: Tally() for view in WHOLE_IMAGE_VIEWS}
    for seed in range(HELD_OUT_START, HELD_OUT_START + count):
        image, scene = make_scene(seed)
        if not scene.objects:
            continue
        for view, analysis in views(image, registry).items():
            ranked = index.top(analysis.embedding, "clip", 10)
            tallies[view].add(index.precision(ranked, scene.kinds()))
    return {f"whole_p10 {view}": tally.rate() for view, tally in tallies.items()}


def timings(repeats: int) -> dict[str, float]:
    """Median ms of the worker's model step (`analyse_image`, each view with its own cells) on
    a ViT-B/32-shaped model for the reduced copy (`ANALYSIS_REDUCED_SIDE` = 224) of a 3,000 x
    1,500 px painting, the views taken in turn in every repeat so a slow spell of a shared
    machine falls on all of them."""
    with tempfile.TemporaryDirectory() as folder:
        base, _ = random_vit_b32(Path(folder), CLIPTokenizer.from_pretrained(DEMO_BASE_MODEL))
        registry = ModelRegistry([ModelSpec("clip", str(base))], device="cpu", dtype="fp32")
        image, _ = make_scene(WIDE_SEEDS, aspect=2.0)
        painting = image.resize((3000, 1500))
        reduced = painting.reduce(min(painting.size) // 224)
        samples: dict[str, list[float]] = {view: [] for view in WHOLE_IMAGE_VIEWS}
        for repeat in range(repeats + 1):
            for view in WHOLE_IMAGE_VIEWS:
                started = time.perf_counter()
                analyse_image(reduced, "clip", view=view, registry=registry)
                if repeat:  # the first round warms up
                    samples[view].append(time.perf_counter() - started)
    result = {
        f"ms_3000px {view}": round(1000 * statistics.median(samples[view]), 1)
        for view in WHOLE_IMAGE_VIEWS
    }
    centre = result["ms_3000px centre"]
    for view in WHOLE_IMAGE_VIEWS:
        result[f"ratio {view}"] = round(result[f"ms_3000px {view}"] / centre, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="scenes per aspect")
    parser.add_argument("--aspects", type=float, nargs="*", default=[2.0, 0.5])
    parser.add_argument("--ordinary", type=int, default=300, help="ordinary scenes")
    parser.add_argument("--repeats", type=int, default=30, help="timing repeats (0: none)")
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="folder with clip/ and lora")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    started = time.perf_counter()
    registry = demo_registry(args.weights)
    index = CorpusIndex.build(registry, keys=("clip",))
    report: dict = {"machine": cpu_description(), "count": args.count}
    for aspect in args.aspects:
        report[f"aspect {aspect}"] = non_square(index, registry, aspect, args.count)
    if args.ordinary:
        report["ordinary"] = ordinary(index, registry, args.ordinary)
    if args.repeats:
        report["timing"] = timings(args.repeats)
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report))
        return
    for part, values in report.items():
        if not isinstance(values, dict):
            print(f"{part:32s} {values}")
            continue
        print(part)
        for name, value in values.items():
            print(f"  {name:30s} {value}")


if __name__ == "__main__":
    main()
