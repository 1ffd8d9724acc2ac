"""Degraded copies of a plate: what a researcher's photograph or scan of a reproduction does to
it (a tighter crop, another size, a colour cast, heavy JPEG compression, sensor noise). Used by
the figure-search tests and `bench/figures.py` to ask whether a plate still finds its work."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def degrade(
    image: Image.Image,
    *,
    crop: float = 1.0,
    scale: float = 1.0,
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0),
    jpeg_quality: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> Image.Image:
    """`image` (RGB) centre-cropped to `crop` of each side, resized by `scale`, each channel
    multiplied by `colour`, Gaussian noise of std `noise` (in 0–255 units) added, then saved and
    read back as JPEG at `jpeg_quality` (applied in that order; each left out at its default)."""
    picture = image.convert("RGB")
    if crop < 1.0:
        width, height = picture.size
        w, h = round(width * crop), round(height * crop)
        left, top = (width - w) // 2, (height - h) // 2
        picture = picture.crop((left, top, left + w, top + h))
    if scale != 1.0:
        w, h = picture.size
        picture = picture.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    if colour != (1.0, 1.0, 1.0) or noise:
        pixels = np.asarray(picture, dtype=np.float32) * np.asarray(colour, dtype=np.float32)
        if noise:
            pixels += np.random.default_rng(seed).normal(0.0, noise, pixels.shape)
        picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if jpeg_quality is not None:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=jpeg_quality)
        picture = Image.open(io.BytesIO(buffer.getvalue()))
        picture.load()
    return picture


TEST_DEGRADATION = {"crop": 0.8, "jpeg_quality": 30, "colour": (1.12, 1.0, 0.85)}
"""The issue's case: an 80 % crop, JPEG quality 30 and a warm colour cast."""
