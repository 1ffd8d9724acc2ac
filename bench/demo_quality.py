"""Demo-world retrieval quality on held-out scenes (see ``apps.demo.quality``).

    python bench/demo_quality.py --seed-start 10000000 --count 200 [--json]
    python bench/demo_quality.py --dtype bf16    # the same scenes with the model in bf16
    python bench/demo_quality.py --view centre   # whole images as the centre square

With ``--json`` the last line printed is one JSON object with all metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.demo.quality import WEIGHTS, evaluate
from apps.demo.scenes import HELD_OUT_START
from apps.engine.images import CELL_VIEWS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-start", type=int, default=HELD_OUT_START)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="folder with clip/ and lora")
    parser.add_argument("--no-pointing", action="store_true", help="skip the Grad-ECLIP metric")
    parser.add_argument("--no-adapter", action="store_true", help="skip clip vs paintingclip")
    parser.add_argument(
        "--dtype", choices=["fp32", "bf16", "int8"], default="fp32", help="model precision"
    )
    parser.add_argument(
        "--view",
        choices=CELL_VIEWS,
        default="keep_aspect",
        help="how whole images and their cells are seen (engine.analyse_image)",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    started = time.perf_counter()
    result = evaluate(
        args.seed_start,
        args.count,
        args.weights,
        pointing=not args.no_pointing,
        adapter=not args.no_adapter,
        dtype=args.dtype,
        view=args.view,
    )
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(result))
        return
    for name, value in result.items():
        print(f"{name:28s} {value}")
    print(f"{'seconds':28s} {seconds:.1f}")


if __name__ == "__main__":
    main()
