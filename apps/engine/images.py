"""Image input and the geometry between original pixels, the model's view and its patch grid.

Torch-free on purpose: web processes load images, draw grids and render overlays with this
module and must not pay for (or hold) the ML stack. Model code turns the arrays that
`Preprocess` returns into tensors itself.

CLIP sees an image through its processor: resize so the *shortest* side equals
`shortest_edge`, then cut the centred `crop_height x crop_width` window. Whatever the model
says about a patch or a grid cell is therefore about a box of the *original* image that lies
inside that centre crop. `Preprocess` reproduces the processor's pixels itself (PIL resize with
the processor's filter, the same integer crop offsets, the same normalisation) so that the
pixels the model sees and the boxes the UI draws come from one piece of arithmetic, whichever
backend transformers would pick for the processor.

An analysis sees the whole painting instead (`WHOLE_IMAGE_VIEWS`): its grid has
`GRID_SHORT_CELLS` near-square cells along the shorter side (`painting_grid`), whose boxes
(`grid_boxes`) tile the image; `cell_box` and `cell_at` are the centre crop's geometry, which
analyses stored before keep.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

ImageInput = Image.Image | bytes | str | os.PathLike[str]
Box = tuple[float, float, float, float]
"""(left, top, right, bottom) in original-image pixels, right/bottom exclusive."""

_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


WHITE_BALANCES = ("grey_world", "none")
"""How figure search white-balances both sides before embedding (`white_balanced`)."""


def grey_world(image: Image.Image) -> Image.Image:
    """`image` (RGB) with each channel scaled to the mean of all three: the grey-world
    assumption of white balance (Buchsbaum 1980). It undoes a uniform per-channel colour cast
    exactly, up to clipping, such as the warm or cold cast of a printed reproduction."""
    pixels = np.asarray(image, dtype=np.float32)  # [H, W, 3]
    means = pixels.reshape(-1, 3).mean(axis=0)  # [3]
    balanced = pixels * (means.mean() / np.maximum(means, 1.0))
    return Image.fromarray(np.clip(balanced, 0, 255).round().astype(np.uint8))


def white_balanced(image: Image.Image, method: str) -> Image.Image:
    """`image` as figure search sees it: balanced by `method` (one of `WHITE_BALANCES`)."""
    if method == "grey_world":
        return grey_world(image)
    if method == "none":
        return image
    raise ValueError(f"white balance {method!r} is not one of {', '.join(WHITE_BALANCES)}.")


def load_image(source: ImageInput, *, min_short_side: int | None = None) -> Image.Image:
    """An RGB PIL image from a PIL image, encoded bytes or a path, upright per its EXIF tag.

    Transparent images are composited onto white (dropping alpha would reveal whatever colour
    the transparent pixels happen to store, often black); 16-bit greyscale is scaled to 8 bits
    instead of being clipped; CMYK, palette and greyscale are converted to RGB.

    With `min_short_side`, a JPEG file is decoded at the smallest of the scales its format
    offers for free (1/1, 1/2, 1/4, 1/8, in the DCT: Pillow's ``draft``) that keeps the shorter
    side at least that long. The model sees ~224 px, so a 12-megapixel photograph decodes at
    1/8 in a fraction of the time, and the resize that follows has 64x fewer pixels to read.
    Proportions are kept (to a pixel), so boxes scale by ``size / original size``.
    """
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, bytes | bytearray):
        image = Image.open(io.BytesIO(source))
    else:
        image = Image.open(source)
    if min_short_side is not None and image.format == "JPEG":
        width, height = image.size
        scale = min_short_side / min(width, height)
        if scale < 1:
            image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
    image = ImageOps.exif_transpose(image)
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        scale = 255.0 / 65535.0 if image.mode != "F" else 255.0 / max(float(values.max()), 1e-6)
        grey = np.clip(values * scale, 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


@dataclass(frozen=True)
class Preprocess:
    """The parts of a CLIP image processor's configuration that decide what the model sees."""

    shortest_edge: int
    crop_height: int
    crop_width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: Image.Resampling = Image.Resampling.BICUBIC

    def __post_init__(self) -> None:
        if self.crop_height > self.shortest_edge or self.crop_width > self.shortest_edge:
            raise ValueError("The centre crop must fit inside the resized image.")

    @classmethod
    def from_processor(cls, image_processor: Any) -> Preprocess:
        """Read a (transformers) CLIP image processor's resize/crop/normalise settings."""
        size, crop = image_processor.size, image_processor.crop_size  # dicts or SizeDicts
        if not (image_processor.do_resize and image_processor.do_center_crop):
            raise ValueError("Only processors that resize and centre-crop are supported.")
        if not size.get("shortest_edge"):
            raise ValueError(f"Only shortest-edge resizing is supported, not size={size}.")
        return cls(
            shortest_edge=int(size["shortest_edge"]),
            crop_height=int(crop["height"]),
            crop_width=int(crop["width"]),
            mean=tuple(float(v) for v in image_processor.image_mean),
            std=tuple(float(v) for v in image_processor.image_std),
            resample=Image.Resampling(int(image_processor.resample)),
        )

    def resized_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) after the shortest-side resize, rounded as transformers does."""
        width, height = image_size
        short, long = sorted((width, height))
        new_long = int(self.shortest_edge * long / short)
        if width <= height:
            return self.shortest_edge, new_long
        return new_long, self.shortest_edge

    def crop_offset(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(left, top) of the centre crop in resized pixels."""
        width, height = self.resized_size(image_size)
        return (width - self.crop_width) // 2, (height - self.crop_height) // 2

    def pixel_values(self, images: list[Image.Image]) -> np.ndarray:
        """Model input [B, 3, crop_height, crop_width], float32, for RGB images (as
        `load_image` returns)."""
        arrays = []
        for image in images:
            left, top = self.crop_offset(image.size)
            resized = image.resize(self.resized_size(image.size), resample=self.resample)
            window = resized.crop((left, top, left + self.crop_width, top + self.crop_height))
            arrays.append(np.asarray(window, dtype=np.float32))
        return self._normalise(np.stack(arrays))

    def aspect_pixel_values(self, image: Image.Image, short_side: int, patch: int) -> np.ndarray:
        """Model input [1, 3, H, W], float32, for the *whole* image: the shortest side becomes
        `short_side` rounded to a multiple of `patch`, the longest side as many patches as
        `painting_grid` gives (aspect changes by at most half a patch), for models run with
        interpolated position embeddings. With `short_side` = the crop size the patch grid is
        the painting's cell grid whenever a crop is `GRID_SHORT_CELLS` patches (B/32)."""
        rows, cols = painting_grid(image.size, max(1, round(short_side / patch)))
        resized = image.resize((cols * patch, rows * patch), resample=self.resample)
        return self._normalise(np.asarray(resized, dtype=np.float32)[None])

    def letterbox_pixel_values(self, image: Image.Image) -> np.ndarray:
        """Model input [1, 3, crop_height, crop_width], float32: the whole image shrunk to fit
        the crop, centred, on the processor's mean colour (which normalises to zero)."""
        width, height = image.size
        scale = min(self.crop_width / width, self.crop_height / height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        fill = tuple(round(255 * value) for value in self.mean)
        canvas = Image.new("RGB", (self.crop_width, self.crop_height), fill)
        offset = ((self.crop_width - size[0]) // 2, (self.crop_height - size[1]) // 2)
        canvas.paste(image.resize(size, resample=self.resample), offset)
        return self._normalise(np.asarray(canvas, dtype=np.float32)[None])

    def stretched_pixel_values(self, images: list[Image.Image]) -> np.ndarray:
        """Model input [B, 3, crop_height, crop_width], float32: each image resized to the crop
        exactly (for the near-square windows of `painting_windows`, at most half a cell off)."""
        size = (self.crop_width, self.crop_height)
        arrays = [np.asarray(image.resize(size, resample=self.resample)) for image in images]
        return self._normalise(np.stack(arrays).astype(np.float32))

    def _normalise(self, batch: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        normalised = (batch / np.float32(255.0) - mean) / std
        return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2))


WHOLE_IMAGE_VIEWS = ("centre", "letterbox", "windows", "keep_aspect")
"""How the model sees a whole painting for its image embedding (see `embedding.analyse_image`):
the processor's centre square; the whole image letterboxed into the square; the mean of
overlapping square windows that tile it; one pass over the whole image at its own aspect with
interpolated position embeddings."""

CELL_VIEWS = ("centre", "windows", "keep_aspect")
"""The views of `WHOLE_IMAGE_VIEWS` that give grid cells."""

GRID_SHORT_CELLS = 7
"""Cells along the shorter side of a painting's grid (the 7x7 patch grid of ViT-B/32)."""


def painting_grid(
    image_size: tuple[int, int], short_cells: int = GRID_SHORT_CELLS
) -> tuple[int, int]:
    """(rows, cols) of a grid of near-square cells over the whole image: `short_cells` along
    the shorter side and round(short_cells x aspect) along the longer (half rounds up), so a
    square image has short_cells x short_cells, a 2:1 one short_cells x 2 short_cells."""
    width, height = image_size
    if width <= 0 or height <= 0:
        raise ValueError(f"An image of {width}x{height} px has no grid.")
    long_cells = max(
        short_cells, math.floor(short_cells * max(width, height) / min(width, height) + 0.5)
    )
    return (short_cells, long_cells) if width >= height else (long_cells, short_cells)


def grid_boxes(image_size: tuple[int, int], grid: tuple[int, int]) -> list[list[Box]]:
    """Boxes [rows][cols] of `grid` (rows, cols) laid over the whole image, in original
    pixels: equal cells that tile it with no gaps or overlaps (float coordinates, right and
    bottom exclusive, the last cell ending exactly at the image's edge)."""
    width, height = image_size
    rows, cols = grid
    xs = [width * col / cols for col in range(cols + 1)]
    ys = [height * row / rows for row in range(rows + 1)]
    return [[(xs[c], ys[r], xs[c + 1], ys[r + 1]) for c in range(cols)] for r in range(rows)]


def grid_cell_at(
    image_size: tuple[int, int], x: float, y: float, grid: tuple[int, int]
) -> tuple[int, int] | None:
    """The (row, col) of the `grid_boxes` cell under original-image point (x, y); None
    outside the image."""
    width, height = image_size
    rows, cols = grid
    row, col = math.floor(y * rows / height), math.floor(x * cols / width)
    if 0 <= row < rows and 0 <= col < cols:
        return row, col
    return None


def painting_windows(grid: tuple[int, int]) -> list[tuple[int, int]]:
    """(first row, first col) of the square windows of min(grid) x min(grid) cells that tile
    a painting's grid along its long side, neighbours overlapping by about half a window;
    one window for a square grid."""
    rows, cols = grid
    side = min(rows, cols)
    extra = max(rows, cols) - side
    count = 1 + math.ceil(extra / (side / 2))
    starts = sorted({round(i * extra / max(1, count - 1)) for i in range(count)})
    return [(start, 0) if rows > cols else (0, start) for start in starts]


def crop_box(image_size: tuple[int, int], preprocess: Preprocess) -> Box:
    """The box of the original image that the model sees after resize + centre crop."""
    return _crop_to_original(
        image_size, preprocess, (0.0, 0.0, preprocess.crop_width, preprocess.crop_height)
    )


def cell_box(
    image_size: tuple[int, int],
    row: int,
    col: int,
    grid: tuple[int, int],
    preprocess: Preprocess,
) -> Box:
    """The box, in ORIGINAL image pixels, that grid cell (row, col) covers.

    The model's view is the centre crop of the image resized so its shortest side equals
    `preprocess.shortest_edge`; the grid (rows, cols) divides that crop evenly. So: cell in crop
    pixels -> add the crop offset -> scale each axis by original/resized size. Cells never leave
    the centre crop, so on a non-square image the strips beyond the crop belong to no cell.
    Coordinates are floats; right/bottom are exclusive.
    """
    rows, cols = grid
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"Cell ({row}, {col}) is outside a {rows}x{cols} grid.")
    cell_w = preprocess.crop_width / cols
    cell_h = preprocess.crop_height / rows
    box = (col * cell_w, row * cell_h, (col + 1) * cell_w, (row + 1) * cell_h)
    return _crop_to_original(image_size, preprocess, box)


def cell_at(
    image_size: tuple[int, int],
    x: float,
    y: float,
    grid: tuple[int, int],
    preprocess: Preprocess,
) -> tuple[int, int] | None:
    """The (row, col) of the grid cell under original-image point (x, y); None when the point
    lies outside the centre crop the model sees. Inverse of `cell_box`."""
    rows, cols = grid
    width, height = image_size
    resized_w, resized_h = preprocess.resized_size(image_size)
    left, top = preprocess.crop_offset(image_size)
    crop_x = x * resized_w / width - left
    crop_y = y * resized_h / height - top
    col = math.floor(crop_x * cols / preprocess.crop_width)
    row = math.floor(crop_y * rows / preprocess.crop_height)
    if 0 <= row < rows and 0 <= col < cols:
        return row, col
    return None


def _crop_to_original(image_size: tuple[int, int], preprocess: Preprocess, box: Box) -> Box:
    width, height = image_size
    resized_w, resized_h = preprocess.resized_size(image_size)
    left, top = preprocess.crop_offset(image_size)
    scale_x, scale_y = width / resized_w, height / resized_h
    x0, y0, x1, y1 = box
    return (
        (x0 + left) * scale_x,
        (y0 + top) * scale_y,
        (x1 + left) * scale_x,
        (y1 + top) * scale_y,
    )
