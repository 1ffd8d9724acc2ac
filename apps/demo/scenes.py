"""Procedural "paintings" with exact ground truth, deterministic by seed.

Real CLIP weights cannot be downloaded here, so the demo trains a tiny CLIP on this world. Every
scene is a sky over a ground with one to five objects; the generator knows each object's kind,
colour and pixel bounding box, which is what lets the evaluation score retrieval exactly.

Seed ranges (by convention, so that evaluation never sees training data):

* ``TRAIN_SEEDS``: 0 ≤ seed < 1,000,000 — scenes the model is trained on;
* ``CORPUS_SEEDS``: 5,000,000 ≤ seed < 6,000,000 — the plates of the demo corpus;
* ``HELD_OUT_START``: seed ≥ 10,000,000 — gallery images and evaluation only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from apps.demo.grammar import KINDS, ObjectFacts, SceneFacts

TRAIN_SEEDS = range(0, 1_000_000)
CORPUS_SEEDS = range(5_000_000, 6_000_000)
HELD_OUT_START = 10_000_000

SKIES: tuple[str, ...] = ("day", "sunset", "night", "overcast")
GROUNDS: tuple[str, ...] = ("field", "sea", "desert", "snow")

Box = tuple[int, int, int, int]
RGB = tuple[int, int, int]

COLOURS: dict[str, RGB] = {
    "red": (200, 40, 35),
    "orange": (235, 130, 30),
    "yellow": (240, 210, 50),
    "green": (50, 140, 60),
    "blue": (40, 80, 190),
    "purple": (120, 60, 150),
    "white": (240, 240, 235),
    "black": (25, 25, 30),
    "brown": (120, 75, 40),
    "grey": (130, 130, 135),
}

_KIND_COLOURS: dict[str, tuple[str, ...]] = {
    "sun": ("yellow", "orange", "red", "white"),
    "moon": ("white", "yellow", "grey"),
    "cloud": ("white", "grey", "purple"),
    "bird": ("black", "white", "blue", "red", "brown"),
    "mountain": ("grey", "blue", "purple", "brown"),
    "tree": ("green", "orange", "yellow", "red"),
    "house": ("white", "red", "yellow", "blue", "brown"),
    "church tower": ("grey", "white", "brown", "red"),
    "windmill": ("brown", "white", "red", "grey"),
    "bridge": ("grey", "brown", "red", "white"),
    "boat": ("red", "blue", "white", "yellow", "brown", "green"),
    "figure": ("red", "blue", "green", "black", "white", "purple", "yellow"),
    "horse": ("brown", "black", "white", "grey"),
    "lighthouse": ("white", "red", "yellow"),
}

# (min, max) of width and height as fractions of the image's shorter side.
_KIND_SIZES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "sun": ((0.2, 0.3), (0.0, 0.0)),
    "moon": ((0.18, 0.28), (0.0, 0.0)),
    "cloud": ((0.3, 0.45), (0.15, 0.22)),
    "bird": ((0.22, 0.3), (0.13, 0.18)),
    "mountain": ((0.35, 0.6), (0.24, 0.38)),
    "tree": ((0.17, 0.26), (0.3, 0.45)),
    "house": ((0.22, 0.34), (0.2, 0.3)),
    "church tower": ((0.13, 0.17), (0.34, 0.5)),
    "windmill": ((0.22, 0.3), (0.3, 0.42)),
    "bridge": ((0.4, 0.6), (0.14, 0.2)),
    "boat": ((0.24, 0.36), (0.22, 0.32)),
    "figure": ((0.11, 0.15), (0.28, 0.38)),
    "horse": ((0.24, 0.34), (0.18, 0.25)),
    "lighthouse": ((0.13, 0.17), (0.34, 0.48)),
}

SKY_KINDS = ("sun", "moon", "cloud", "bird")
LAND_KINDS = ("tree", "house", "church tower", "windmill", "bridge", "figure", "horse")
SEA_KINDS = ("boat", "lighthouse")

_SKY_GRADIENTS: dict[str, tuple[RGB, RGB]] = {
    "day": ((95, 150, 225), (185, 215, 245)),
    "sunset": ((120, 70, 130), (250, 160, 80)),
    "night": ((10, 15, 45), (40, 50, 95)),
    "overcast": ((140, 140, 150), (195, 195, 200)),
}
_GROUND_GRADIENTS: dict[str, tuple[RGB, RGB]] = {
    "field": ((110, 165, 80), (60, 110, 45)),
    "sea": ((70, 110, 140), (30, 65, 100)),
    "desert": ((225, 200, 140), (195, 160, 100)),
    "snow": ((235, 238, 245), (200, 205, 220)),
}


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene: kind, colour name and its bounding box in image pixels."""

    kind: str
    colour: str
    box: Box

    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


@dataclass(frozen=True)
class Scene:
    """Ground truth of one generated painting."""

    seed: int
    width: int
    height: int
    sky: str
    ground: str
    horizon: int
    objects: tuple[SceneObject, ...]

    def kinds(self) -> set[str]:
        return {o.kind for o in self.objects}

    def facts(self) -> SceneFacts:
        """The scene as the sentence grammar sees it (size and position words from the boxes)."""
        return SceneFacts(self.sky, self.ground, tuple(self.object_facts(o) for o in self.objects))

    def object_facts(self, obj: SceneObject) -> ObjectFacts:
        x0, y0, x1, y1 = obj.box
        share = (x1 - x0) * (y1 - y0) / (self.width * self.height)
        size = "large" if share > 0.06 else "small"
        cx, cy = obj.centre()
        return ObjectFacts(
            obj.kind, obj.colour, size, position_word(cx / self.width, cy / self.height)
        )

    def to_json(self) -> dict:
        return {
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "sky": self.sky,
            "ground": self.ground,
            "objects": [
                {"kind": o.kind, "colour": o.colour, "box": list(o.box)} for o in self.objects
            ],
        }


def position_word(fx: float, fy: float) -> str:
    """Name of the 3x3 region holding a point given as fractions of width and height."""
    col = min(int(fx * 3), 2)
    row = min(int(fy * 3), 2)
    return (
        ("upper left", "top", "upper right"),
        ("left", "centre", "right"),
        ("lower left", "bottom", "lower right"),
    )[row][col]


def generate_scene(seed: int, aspect: float | None = None) -> Scene:
    """The scene for a seed: size, sky, ground, horizon and non-overlapping objects.

    With `aspect` (width / height), the scene has that shape instead, its shorter side
    200 to 400 px, and its objects are placed across the whole of it (the same seed gives
    other scenes with and without it).
    """
    rng = random.Random(seed)
    if aspect is None:
        width = rng.randint(200, 640)
        height = rng.randint(max(200, int(width / 1.5)), min(640, int(width * 1.5)))
    else:
        short = rng.randint(200, 400)
        width, height = (
            (round(short * aspect), short) if aspect >= 1 else (short, round(short / aspect))
        )
    sky = rng.choice(SKIES)
    ground = rng.choice(GROUNDS)
    horizon = int(height * rng.uniform(0.4, 0.62))
    wanted = rng.randint(1, 5)
    objects: list[SceneObject] = []
    for _ in range(wanted * 6):
        if len(objects) == wanted:
            break
        kind = rng.choice(_allowed_kinds(sky, ground))
        if any(o.kind == kind for o in objects):
            continue
        box = _place(kind, width, height, horizon, rng)
        if box is not None and all(_overlap(box, o.box) < 0.12 for o in objects):
            objects.append(SceneObject(kind, rng.choice(_KIND_COLOURS[kind]), box))
    return Scene(seed, width, height, sky, ground, horizon, tuple(objects))


def _allowed_kinds(sky: str, ground: str) -> tuple[str, ...]:
    sky_kinds = tuple(
        k
        for k in SKY_KINDS
        if not (k == "sun" and sky == "night") and not (k == "moon" and sky == "day")
    )
    ground_kinds = SEA_KINDS if ground == "sea" else LAND_KINDS
    return (*sky_kinds, "mountain", *ground_kinds)


def _place(kind: str, width: int, height: int, horizon: int, rng: random.Random) -> Box | None:
    short = min(width, height)
    (wmin, wmax), (hmin, hmax) = _KIND_SIZES[kind]
    w = int(short * rng.uniform(wmin, wmax))
    h = w if hmax == 0 else int(short * rng.uniform(hmin, hmax))
    if w >= width - 4 or h >= height - 4:
        return None
    x0 = rng.randint(2, width - w - 2)
    if kind in SKY_KINDS:
        top_max = horizon - h - 2
        if top_max < 2:
            return None
        y0 = rng.randint(2, top_max)
    elif kind == "mountain":
        y0 = horizon - h
        if y0 < 2:
            return None
    else:
        bottom_min = horizon + max(4, h // 4)
        if bottom_min > height - 2:
            return None
        y0 = rng.randint(bottom_min, height - 2) - h
    return (x0, y0, x0 + w, y0 + h)


def _overlap(a: Box, b: Box) -> float:
    """Intersection area over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def render_plain(scene: Scene) -> Image.Image:
    """Flat, clean rendering of a scene: gradients and outlined shapes."""
    rng = random.Random(scene.seed * 7919 + 1)
    arr = np.zeros((scene.height, scene.width, 3), dtype=np.float32)
    sky_top, sky_bottom = _SKY_GRADIENTS[scene.sky]
    ground_top, ground_bottom = _GROUND_GRADIENTS[scene.ground]
    arr[: scene.horizon] = _gradient(sky_top, sky_bottom, scene.horizon)[:, None, :]
    arr[scene.horizon :] = _gradient(ground_top, ground_bottom, scene.height - scene.horizon)[
        :, None, :
    ]
    img = Image.fromarray(arr.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    if scene.sky == "night":
        for _ in range(scene.width * scene.horizon // 900):
            x, y = rng.randrange(scene.width), rng.randrange(max(1, scene.horizon))
            draw.point((x, y), fill=(230, 230, 200))
    for obj in draw_order(scene):
        cy = min(int(obj.centre()[1]), scene.height - 1)
        backdrop = tuple(int(v) for v in arr[cy, int(obj.centre()[0])])
        _DRAWERS[obj.kind](draw, obj.box, COLOURS[obj.colour], backdrop)
    return img


def draw_order(scene: Scene) -> list[SceneObject]:
    """Far things first (mountains, then by lower edge), so nearer objects overlap them."""
    return sorted(scene.objects, key=lambda o: (o.kind != "mountain", o.box[3]))


def _gradient(top: RGB, bottom: RGB, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, max(n, 1), dtype=np.float32)[:, None]
    return np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t


def _dark(c: RGB, f: float = 0.55) -> RGB:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


def _draw_sun(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    for i in range(12):
        a = i * math.pi / 6
        d.line(
            (
                cx + 0.65 * r * math.cos(a),
                cy + 0.65 * r * math.sin(a),
                cx + r * math.cos(a),
                cy + r * math.sin(a),
            ),
            fill=c,
            width=max(2, int(r / 8)),
        )
    d.ellipse(
        (cx - 0.62 * r, cy - 0.62 * r, cx + 0.62 * r, cy + 0.62 * r), fill=c, outline=_dark(c, 0.8)
    )


def _draw_moon(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    d.ellipse(b, fill=c)
    off = (x1 - x0) * 0.38
    d.ellipse((x0 + off, y0 - off * 0.3, x1 + off, y1 - off * 0.3), fill=sky)


def _draw_cloud(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    edge = _dark(c, 0.8)
    for fx, fy, fr in ((0.25, 0.6, 0.3), (0.5, 0.4, 0.4), (0.75, 0.6, 0.3), (0.5, 0.7, 0.3)):
        r = fr * h * 1.1
        cx, cy = x0 + fx * w, y0 + fy * h
        d.ellipse((cx - r * 1.4, cy - r, cx + r * 1.4, cy + r), fill=c, outline=edge)
    d.rectangle((x0 + 0.2 * w, y0 + 0.55 * h, x1 - 0.2 * w, y1 - 0.05 * h), fill=c)


def _draw_bird(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    lw = max(3, int(h / 5))
    mid = (x0 + w / 2, y0 + h * 0.75)
    d.line((x0, y0 + h * 0.2, x0 + w * 0.25, y0 + h * 0.35, *mid), fill=c, width=lw, joint="curve")
    d.line((*mid, x1 - w * 0.25, y0 + h * 0.35, x1, y0 + h * 0.2), fill=c, width=lw, joint="curve")
    d.ellipse((mid[0] - lw, mid[1] - lw, mid[0] + lw, mid[1] + lw), fill=c)


def _draw_mountain(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    peak = (x0 + w * 0.5, y0)
    d.polygon((x0, y1, peak[0], peak[1], x1, y1), fill=c, outline=_dark(c))
    d.polygon(
        (peak[0] - w * 0.12, y0 + h * 0.24, peak[0], peak[1], peak[0] + w * 0.12, y0 + h * 0.24),
        fill=(245, 245, 250),
    )


def _draw_tree(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0 + w * 0.42, y0 + h * 0.5, x0 + w * 0.58, y1), fill=(90, 60, 30))
    d.ellipse((x0, y0, x1, y0 + h * 0.68), fill=c, outline=_dark(c))


def _draw_house(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0 + w * 0.08, y0 + h * 0.42, x1 - w * 0.08, y1), fill=c, outline=_dark(c))
    d.polygon(
        (x0, y0 + h * 0.45, x0 + w / 2, y0, x1, y0 + h * 0.45),
        fill=(140, 45, 35),
        outline=(70, 20, 15),
    )
    d.rectangle((x0 + w * 0.42, y0 + h * 0.7, x0 + w * 0.58, y1), fill=(70, 45, 25))
    d.rectangle((x0 + w * 0.18, y0 + h * 0.55, x0 + w * 0.32, y0 + h * 0.7), fill=(240, 220, 120))


def _draw_church_tower(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0 + w * 0.15, y0 + h * 0.35, x1 - w * 0.15, y1), fill=c, outline=_dark(c))
    d.polygon((x0, y0 + h * 0.37, x0 + w / 2, y0 + h * 0.06, x1, y0 + h * 0.37), fill=_dark(c, 0.7))
    d.line((x0 + w / 2, y0, x0 + w / 2, y0 + h * 0.1), fill=(40, 40, 40), width=max(1, int(w / 10)))
    d.ellipse((x0 + w * 0.35, y0 + h * 0.45, x1 - w * 0.35, y0 + h * 0.52), fill=(30, 30, 30))


def _draw_windmill(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    hub = (x0 + w / 2, y0 + h * 0.35)
    d.polygon(
        (x0 + w * 0.35, y1, x0 + w * 0.42, hub[1], x1 - w * 0.42, hub[1], x1 - w * 0.35, y1),
        fill=c,
        outline=_dark(c),
    )
    r = min(w / 2, h * 0.35)
    for i in range(4):
        a = math.pi / 4 + i * math.pi / 2
        d.line(
            (*hub, hub[0] + r * math.cos(a), hub[1] + r * math.sin(a)),
            fill=(60, 40, 25),
            width=max(2, int(w / 14)),
        )


def _draw_bridge(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.rectangle((x0, y0, x1, y1), fill=c, outline=_dark(c))
    n = 3
    for i in range(n):
        ax0 = x0 + w * (0.06 + i * 0.32)
        d.chord((ax0, y0 + h * 0.45, ax0 + w * 0.24, y1 + h * 0.55), 180, 360, fill=(60, 80, 110))
    d.line((x0, y0 + h * 0.12, x1, y0 + h * 0.12), fill=_dark(c), width=max(1, int(h / 10)))


def _draw_boat(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.polygon(
        (x0, y0 + h * 0.7, x1, y0 + h * 0.7, x1 - w * 0.15, y1, x0 + w * 0.15, y1),
        fill=c,
        outline=_dark(c),
    )
    mast = x0 + w * 0.5
    d.line((mast, y0, mast, y0 + h * 0.7), fill=(70, 50, 30), width=max(2, int(w / 30)))
    d.polygon(
        (mast + 2, y0 + h * 0.05, mast + 2, y0 + h * 0.62, x1 - w * 0.1, y0 + h * 0.62),
        fill=(235, 230, 215),
        outline=(120, 115, 100),
    )


def _draw_figure(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w = x1 - x0
    head = w * 0.32
    d.ellipse((x0 + w / 2 - head, y0, x0 + w / 2 + head, y0 + 2 * head), fill=(230, 190, 160))
    d.polygon((x0 + w / 2, y0 + 2 * head, x0, y1, x1, y1), fill=c, outline=_dark(c))


def _draw_horse(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    lw = max(2, int(w / 18))
    for fx in (0.22, 0.32, 0.62, 0.72):
        d.line((x0 + w * fx, y0 + h * 0.5, x0 + w * fx, y1), fill=_dark(c, 0.7), width=lw)
    d.ellipse(
        (x0 + w * 0.12, y0 + h * 0.25, x0 + w * 0.82, y0 + h * 0.65), fill=c, outline=_dark(c)
    )
    d.polygon(
        (
            x0 + w * 0.68,
            y0 + h * 0.4,
            x0 + w * 0.86,
            y0,
            x1,
            y0 + h * 0.1,
            x0 + w * 0.8,
            y0 + h * 0.45,
        ),
        fill=c,
        outline=_dark(c),
    )
    d.line(
        (x0 + w * 0.14, y0 + h * 0.35, x0 + w * 0.02, y0 + h * 0.6), fill=_dark(c, 0.5), width=lw
    )


def _draw_lighthouse(d: ImageDraw.ImageDraw, b: Box, c: RGB, sky: RGB) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    d.polygon(
        (
            x0 + w * 0.1,
            y1,
            x0 + w * 0.3,
            y0 + h * 0.2,
            x1 - w * 0.3,
            y0 + h * 0.2,
            x1 - w * 0.1,
            y1,
        ),
        fill=c,
        outline=_dark(c),
    )
    for fy in (0.4, 0.65):
        d.rectangle(
            (x0 + w * 0.2, y0 + h * fy, x1 - w * 0.2, y0 + h * (fy + 0.1)), fill=_dark(c, 0.5)
        )
    d.rectangle((x0 + w * 0.28, y0 + h * 0.06, x1 - w * 0.28, y0 + h * 0.2), fill=(255, 240, 150))
    d.polygon(
        (x0 + w * 0.22, y0 + h * 0.07, x0 + w / 2, y0, x1 - w * 0.22, y0 + h * 0.07),
        fill=(60, 60, 60),
    )


_DRAWERS = {
    "sun": _draw_sun,
    "moon": _draw_moon,
    "cloud": _draw_cloud,
    "bird": _draw_bird,
    "mountain": _draw_mountain,
    "tree": _draw_tree,
    "house": _draw_house,
    "church tower": _draw_church_tower,
    "windmill": _draw_windmill,
    "bridge": _draw_bridge,
    "boat": _draw_boat,
    "figure": _draw_figure,
    "horse": _draw_horse,
    "lighthouse": _draw_lighthouse,
}
assert set(_DRAWERS) == set(KINDS)


def render_painterly(scene: Scene) -> Image.Image:
    """The same scene as an "old painting": varnish palette shift, blur and brush strokes.

    The strokes sample colours from the plain rendering and smear them along random directions,
    which breaks the crisp edges the base model learned from; the varnish shifts every colour
    toward brown-yellow. Together they make the base model measurably worse, which is what the
    PaintingCLIP adapter is trained to recover.
    """
    rng = random.Random(scene.seed * 104729 + 2)
    base = render_plain(scene).filter(ImageFilter.GaussianBlur(radius=rng.uniform(1.0, 2.0)))
    src = np.asarray(base, dtype=np.float32)
    canvas = base.copy()
    draw = ImageDraw.Draw(canvas)
    w, h = scene.width, scene.height
    stroke = max(3, min(w, h) // 45)
    angle = rng.uniform(0, math.pi)
    for _ in range(w * h // (stroke * stroke)):
        x, y = rng.randrange(w), rng.randrange(h)
        colour = src[y, x] + rng.uniform(-18, 18)
        a = angle + rng.uniform(-0.6, 0.6)
        length = stroke * rng.uniform(1.5, 3.5)
        dx, dy = math.cos(a) * length / 2, math.sin(a) * length / 2
        draw.line(
            (x - dx, y - dy, x + dx, y + dy),
            fill=tuple(int(v) for v in np.clip(colour, 0, 255)),
            width=stroke,
        )
    arr = np.asarray(canvas, dtype=np.float32) / 255.0
    strength = rng.uniform(0.45, 0.7)
    sepia = arr @ np.array(
        [[0.393, 0.349, 0.272], [0.769, 0.686, 0.534], [0.189, 0.168, 0.131]], np.float32
    )
    arr = (1 - strength) * arr + strength * np.clip(sepia, 0, 1)
    arr = arr ** rng.uniform(0.8, 1.25)
    grain = np.random.default_rng(scene.seed).normal(0, 0.035, arr.shape[:2])[..., None]
    arr = np.clip(arr + grain, 0, 1)
    return Image.fromarray((arr * 255).astype(np.uint8))


def make_scene(
    seed: int, painterly: bool = False, aspect: float | None = None
) -> tuple[Image.Image, Scene]:
    """Image and ground truth for a seed, plain or painterly (of `aspect`: `generate_scene`)."""
    scene = generate_scene(seed, aspect)
    return (render_painterly(scene) if painterly else render_plain(scene)), scene
