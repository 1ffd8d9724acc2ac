"""Pictures of the whole-painting view: the grid and a Grad-ECLIP heat map over a painting.

    python bench/whole_painting_pictures.py [--out docs/img] [--side 960]

Writes, for The Last Supper (from ``../shared/artworks``, skipped with a message where that
folder is absent) and for a 2:1 held-out demo scene, ``whole-painting-<name>.png``: on top
the painting with the analysis grid the worker stores (`analyse_image`, default view), below
it the keep-aspect Grad-ECLIP map of one sentence, with the same grid, as the portal draws
both. The demo model and its corpus (`apps.demo.quality`) supply the sentence. For the demo,
the scene is the first from `bench.whole_painting`'s seeds whose leftmost object lies outside
the centre square (which a centre crop never sees) and whose cell there has a sentence naming
the object's kind in its top 10; that sentence is explained, and its cell outlined. The Last
Supper, which the demo model cannot understand, gets its whole image's best sentence, to show
where the map reaches.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw

from apps.demo.quality import CorpusIndex, demo_registry
from apps.demo.scenes import make_scene
from apps.engine import ModelRegistry, analyse_image, explanation_maps
from apps.engine.overlay import render_overlay
from bench.whole_painting import WIDE_SEEDS

ROOT = Path(__file__).resolve().parents[1]
LAST_SUPPER = (
    ROOT.parent / "shared/artworks/The_Last_Supper_-_Leonardo_Da_Vinci_-_High_Resolution_32x16.jpg"
)


def with_grid(picture: Image.Image, cell_boxes, marked: tuple[int, int] | None) -> Image.Image:
    """The picture with the grid's cell borders, and the marked cell outlined in ochre."""
    out = picture.convert("RGB")
    draw = ImageDraw.Draw(out)
    line = max(1, round(min(out.size) / 300))
    for box in (box for boxes in cell_boxes for box in boxes):
        draw.rectangle(box, outline=(255, 255, 255), width=line)
    if marked is not None:
        draw.rectangle(cell_boxes[marked[0]][marked[1]], outline=(230, 170, 60), width=3 * line)
    return out


def panels(
    shown: Image.Image, analysis, sentence: str, cell, registry: ModelRegistry
) -> Image.Image:
    """The picture with its grid above the sentence's heat map with the same grid."""
    heat = explanation_maps(shown, [sentence], "clip", keep_aspect=True, registry=registry)[0]
    overlay = Image.open(io.BytesIO(render_overlay(shown, heat)))
    gap = 12
    sheet = Image.new("RGB", (shown.width, 2 * shown.height + gap), (246, 244, 239))
    for k, panel in enumerate((shown, overlay)):
        sheet.paste(with_grid(panel, analysis.cell_boxes, cell), (0, k * (shown.height + gap)))
    return sheet


def resized(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)))


def demo_sheet(index: CorpusIndex, registry: ModelRegistry, side: int) -> tuple[Image.Image, str]:
    for seed in range(WIDE_SEEDS, WIDE_SEEDS + 1000):
        image, scene = make_scene(seed, aspect=2.0)
        if not scene.objects:
            continue
        leftmost = min(scene.objects, key=lambda o: o.centre()[0])
        x, y = leftmost.centre()
        if x >= (scene.width - scene.height) / 2:
            continue
        shown = resized(image, side)
        scale = shown.width / image.width
        analysis = analyse_image(shown, "clip", registry=registry)
        cell = analysis.cell_under(x * scale, y * scale)
        ranked = index.top(analysis.cells[cell], "clip", 10)
        naming = [i for i in ranked if leftmost.kind in index.kinds[i]]
        if naming:
            sentence = index.sentences[int(naming[0])]
            sheet = panels(shown, analysis, sentence, cell, registry)
            grid = analysis.cells.shape[:2]
            return (
                sheet,
                f"seed {seed}, {grid[0]} x {grid[1]} grid, the {leftmost.kind} in cell "
                f"{cell}: {sentence!r}",
            )
    raise RuntimeError("No demo scene of the first 1,000 shows it.")


def painting_sheet(
    image: Image.Image, index: CorpusIndex, registry: ModelRegistry, side: int
) -> tuple[Image.Image, str]:
    shown = resized(image, side)
    analysis = analyse_image(shown, "clip", registry=registry)
    sentence = index.sentences[int(index.top(analysis.embedding, "clip", 1)[0])]
    grid = analysis.cells.shape[:2]
    sheet = panels(shown, analysis, sentence, None, registry)
    return sheet, f"{grid[0]} x {grid[1]} grid: {sentence!r}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img")
    parser.add_argument("--side", type=int, default=960, help="long side of each panel, px")
    args = parser.parse_args(argv)
    registry = demo_registry()
    index = CorpusIndex.build(registry, 0, ("clip",))
    args.out.mkdir(parents=True, exist_ok=True)

    sheets = [("demo-2to1", *demo_sheet(index, registry, args.side))]
    if LAST_SUPPER.is_file():
        painting = Image.open(LAST_SUPPER).convert("RGB")
        sheets.append(("last-supper", *painting_sheet(painting, index, registry, args.side)))
    else:
        print(f"{LAST_SUPPER} is absent: The Last Supper is skipped.")
    for name, sheet, what in sheets:
        path = args.out / f"whole-painting-{name}.png"
        # 256 colours, dithered: a third of the size, and no visible loss at this scale.
        sheet.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
        print(f"{path}: {what}")


if __name__ == "__main__":
    main()
