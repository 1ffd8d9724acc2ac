"""Example paintings for the gallery: held-out demo scenes, plain and painterly, with truth.

The seeds lie in the held-out range but far above the evaluation's default window, so neither
training nor the benchmark ever sees a gallery image.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from apps.demo.grammar import PAINTERS, plate_title
from apps.demo.scenes import HELD_OUT_START, Scene, generate_scene, render_painterly, render_plain

GALLERY_START = HELD_OUT_START + 9_000_000
GALLERY_SIZE = 12


@dataclass(frozen=True)
class GalleryItem:
    """One gallery painting: file name, display title and artist, style and ground truth."""

    filename: str
    title: str
    artist: str
    painterly: bool
    scene: Scene

    def image(self) -> Image.Image:
        return render_painterly(self.scene) if self.painterly else render_plain(self.scene)

    def to_json(self) -> dict:
        return {
            "file": self.filename,
            "title": self.title,
            "artist": self.artist,
            "style": "painterly" if self.painterly else "plain",
            **self.scene.to_json(),
        }


def gallery_items(count: int = GALLERY_SIZE) -> list[GalleryItem]:
    """The gallery: scenes with two to five objects, alternating plain and painterly."""
    items: list[GalleryItem] = []
    seed = GALLERY_START
    while len(items) < count:
        scene = generate_scene(seed)
        seed += 1
        if not 2 <= len(scene.objects) <= 5:
            continue
        rng = random.Random(scene.seed)
        facts = scene.facts()
        painterly = len(items) % 2 == 1
        items.append(
            GalleryItem(
                filename=f"demo_{scene.seed}_{'painterly' if painterly else 'plain'}.jpeg",
                title=f"[Demo] {plate_title(facts.objects[0], facts, rng)}",
                artist=PAINTERS[len(items) % len(PAINTERS)],
                painterly=painterly,
                scene=scene,
            )
        )
    return items


def write_gallery(out_dir: Path | str, count: int = GALLERY_SIZE) -> list[GalleryItem]:
    """Save the gallery images and a ``gallery.json`` with their ground truth."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = gallery_items(count)
    for item in items:
        item.image().save(out / item.filename, quality=90)
    manifest = [item.to_json() for item in items]
    (out / "gallery.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return items


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the demo gallery images and gallery.json.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=GALLERY_SIZE)
    args = parser.parse_args(argv)
    for item in write_gallery(args.out, args.count):
        print(item.filename, item.title)


if __name__ == "__main__":
    main()
