"""Figure search: does a degraded reproduction of a plate find its own work, and how fast are
figures embedded?

    python bench/figures.py [--out results.json]

On the demo world (the corpus `load_demo` imports, generated here into a temporary folder, and
the committed demo weights), with the product's own embedding code (`apps.engine.embed_images`,
the view `ANALYSIS_WHOLE_IMAGE` gives, as `embed_corpus --figures` and analyses use):

* every plate of the corpus is embedded under each model key (figures per second, CPU);
* each plate is degraded as a photograph or scan of a reproduction would be (a crop of 70 %,
  85 % and 100 % of each side, half the size, a colour cast, JPEG quality 30, sensor noise) and
  embedded the same way; the nearest plates by cosine over all plates (what `search_figures`
  computes exactly below `EXACT_SEARCH_MAX_ROWS`) give recall@1 and recall@10 of the plate's
  own work, per degradation and model key;
* the same with every image (plates and queries) white-balanced first by the grey-world rule
  (`recall_grey_world`), as the product compares them by default
  (`FIGURE_WHITE_BALANCE=grey_world`); `recall` is `FIGURE_WHITE_BALANCE=none`.

With `../shared/corpus-sample` present, its real figure images are added to the candidates
and degraded the same way (the demo model has never seen such images; the real models
would be measured the same way).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from apps import engine  # noqa: E402
from apps.demo.corpus import write_corpus  # noqa: E402
from apps.demo.degrade import degrade  # noqa: E402
from apps.demo.quality import demo_registry  # noqa: E402
from apps.engine.images import grey_world  # noqa: E402
from bench.common import cpu_description  # noqa: E402

DEGRADATIONS: dict[str, dict] = {
    "none": {},
    "crop 85 %": {"crop": 0.85},
    "crop 70 %": {"crop": 0.7},
    "half size": {"scale": 0.5},
    "colour cast": {"colour": (1.12, 1.0, 0.85)},
    "JPEG quality 30": {"jpeg_quality": 30},
    "noise (σ 12)": {"noise": 12.0},
    "crop 80 %, cast, JPEG 30": {"crop": 0.8, "colour": (1.12, 1.0, 0.85), "jpeg_quality": 30},
}
SHARED_SAMPLE = REPO_ROOT.parent / "shared" / "corpus-sample"


def demo_plates(folder: Path) -> list[tuple[str, Path]]:
    """(work id, image path) of every plate of the demo corpus, written into `folder`."""
    write_corpus(folder)
    return [
        (path.parent.name, path)
        for path in sorted(folder.rglob("*.jpeg"))
        if path.parent.parent.name == "marker_output"
    ]


def sample_figures(limit: int) -> list[tuple[str, Path]]:
    """(work id, image path) of up to `limit` real figures of ../shared/corpus-sample."""
    if not SHARED_SAMPLE.is_dir():
        return []
    found = []
    for path in sorted(SHARED_SAMPLE.rglob("*")):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            found.append((path.parent.name, path))
    return found[:limit]


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def recall(
    queries: np.ndarray, candidates: np.ndarray, query_works: list[str], works: list[str]
) -> dict[str, float]:
    """recall@1 and @10 of each query's own work among the nearest candidates (cosine)."""
    order = np.argsort(-(queries @ candidates.T), axis=1)[:, :10]
    firsts = [works[row[0]] == own for row, own in zip(order, query_works, strict=True)]
    tens = [own in {works[i] for i in row} for row, own in zip(order, query_works, strict=True)]
    return {
        "recall@1": round(float(np.mean(firsts)), 3),
        "recall@10": round(float(np.mean(tens)), 3),
    }


def run(args: argparse.Namespace) -> dict:
    from django.conf import settings

    view = settings.ANALYSIS_WHOLE_IMAGE
    registry = demo_registry()
    report: dict = {"cpu": cpu_description(), "view": view, "models": {}}
    with tempfile.TemporaryDirectory() as folder:
        figures = demo_plates(Path(folder))
        real = sample_figures(args.sample_limit)
        sets = {"demo plates": figures, **({"corpus-sample figures": real} if real else {})}
        for model_key in ("clip", "paintingclip"):
            registry.get(model_key)  # loaded before the clock starts
            results: dict = {}
            for name, items in sets.items():
                works = [work for work, _ in items]
                pictures = [open_rgb(path) for _, path in items]
                started = time.perf_counter()
                candidates = engine.embed_images(pictures, model_key, view=view, registry=registry)
                seconds = time.perf_counter() - started
                balanced = engine.embed_images(
                    [grey_world(p) for p in pictures], model_key, view=view, registry=registry
                )
                per_degradation, per_degradation_balanced = {}, {}
                for label, how in tqdm(DEGRADATIONS.items(), desc=f"{model_key}, {name}"):
                    degraded = [degrade(p, seed=i, **how) for i, p in enumerate(pictures)]
                    queries = engine.embed_images(degraded, model_key, view=view, registry=registry)
                    per_degradation[label] = recall(queries, candidates, works, works)
                    queries = engine.embed_images(
                        [grey_world(p) for p in degraded], model_key, view=view, registry=registry
                    )
                    per_degradation_balanced[label] = recall(queries, balanced, works, works)
                results[name] = {
                    "figures": len(items),
                    "works": len(set(works)),
                    "figures_per_second": round(len(items) / seconds, 1),
                    "recall": per_degradation,
                    "recall_grey_world": per_degradation_balanced,
                }
            report["models"][model_key] = results
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample-limit", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artefact_site.settings")
    django.setup()
    report = run(args)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
