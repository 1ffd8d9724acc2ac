"""Image loading and the geometry between original pixels, the centre crop and grid cells."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import CLIPProcessor

from apps import engine
from apps.engine.images import Preprocess, painting_windows
from tests.engine.conftest import TinyClip

PREPROCESS = Preprocess(
    shortest_edge=64,
    crop_height=64,
    crop_width=64,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
)


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_exif_orientation_is_honoured_for_bytes_and_paths(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), "red")
    image.paste(Image.new("RGB", (10, 20), "blue"), (0, 0))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    (tmp_path / "sideways.jpg").write_bytes(buffer.getvalue())
    for source in (buffer.getvalue(), tmp_path / "sideways.jpg", str(tmp_path / "sideways.jpg")):
        upright = engine.load_image(source)
        assert upright.mode == "RGB"
        assert upright.size == (20, 40)
        top_row = np.asarray(upright)[2, 10]
        assert top_row[2] > 200 > top_row[0]  # the left strip is now on top


def smooth(width: int, height: int) -> Image.Image:
    """A photograph-like image: smooth colour fields and a few hard edges."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    pixels = np.stack([128 + 100 * np.sin(6 * x), 128 + 100 * np.cos(4 * y), 255 * (x > y)], -1)
    return Image.fromarray(pixels.astype(np.uint8))


def test_a_large_jpeg_decodes_no_larger_than_the_model_needs(
    registry: engine.ModelRegistry,
) -> None:
    buffer = io.BytesIO()
    smooth(1800, 1200).save(buffer, format="JPEG", quality=95)
    jpeg = buffer.getvalue()

    small = engine.load_image(jpeg, min_short_side=224)

    assert small.size == (450, 300)  # 1/4: at 1/8 the short side would be 150 < 224
    assert engine.load_image(jpeg, min_short_side=1500).size == (1800, 1200)
    full = engine.load_image(jpeg)
    assert full.size == (1800, 1200)
    # The model sees the same picture either way.
    assert (
        float(
            engine.embed_image(small, "clip", registry=registry)
            @ engine.embed_image(full, "clip", registry=registry)
        )
        > 0.99
    )
    buffer = io.BytesIO()
    smooth(1800, 1200).save(buffer, format="PNG")
    assert engine.load_image(buffer.getvalue(), min_short_side=224).size == (1800, 1200)


def test_modes_are_converted_to_rgb() -> None:
    transparent = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert engine.load_image(transparent).getpixel((0, 0)) == (255, 255, 255)
    half = Image.new("LA", (4, 4), (0, 128))
    assert engine.load_image(half).getpixel((0, 0)) == (127, 127, 127)
    palette = Image.new("P", (4, 4), 3)
    palette.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
    assert engine.load_image(palette).getpixel((0, 0)) == (10, 20, 30)
    palette.info["transparency"] = 3
    assert engine.load_image(palette).getpixel((0, 0)) == (255, 255, 255)
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))
    assert engine.load_image(cmyk).getpixel((0, 0)) == (255, 0, 0)
    sixteen = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    assert sixteen.mode.startswith("I;16")
    row = np.asarray(engine.load_image(sixteen))[0, :, 0]
    assert row.tolist() == [0, 128, 255]


def test_preprocess_matches_the_transformers_processor(tiny_clip: TinyClip) -> None:
    processor = CLIPProcessor.from_pretrained(tiny_clip.base).image_processor
    preprocess = Preprocess.from_processor(processor)
    for size in [(150, 97), (97, 150), (64, 64), (1000, 70)]:
        image = noise(*size)
        expected = processor(images=image, return_tensors="pt").pixel_values
        np.testing.assert_allclose(preprocess.pixel_values([image]), expected, atol=1e-5)


def test_cell_box_by_hand() -> None:
    # 120x80 -> shortest side 64: 96x64; the 64x64 crop starts at x=16; scale back is 1.25.
    # Cell (1, 2) of a 4x4 grid is crop pixels x 32..48, y 16..32 -> resized x 48..64.
    assert engine.cell_box((120, 80), 1, 2, (4, 4), PREPROCESS) == (60.0, 20.0, 80.0, 40.0)
    assert engine.crop_box((120, 80), PREPROCESS) == (20.0, 0.0, 100.0, 80.0)
    assert engine.cell_at((120, 80), 19.9, 40, (4, 4), PREPROCESS) is None
    assert engine.cell_at((120, 80), 20, 0, (4, 4), PREPROCESS) == (0, 0)
    with pytest.raises(ValueError, match="outside"):
        engine.cell_box((120, 80), 4, 0, (4, 4), PREPROCESS)


@pytest.mark.parametrize("size", [(120, 80), (80, 120), (333, 500), (64, 64), (1001, 77)])
@pytest.mark.parametrize("grid", [(7, 7), (4, 4), (3, 5)])
def test_cell_box_and_cell_at_round_trip(size: tuple[int, int], grid: tuple[int, int]) -> None:
    crop_left, crop_top, crop_right, crop_bottom = engine.crop_box(size, PREPROCESS)
    for row in range(grid[0]):
        for col in range(grid[1]):
            left, top, right, bottom = engine.cell_box(size, row, col, grid, PREPROCESS)
            assert crop_left - 1e-9 <= left < right <= crop_right + 1e-9
            assert crop_top - 1e-9 <= top < bottom <= crop_bottom + 1e-9
            centre = ((left + right) / 2, (top + bottom) / 2)
            assert engine.cell_at(size, *centre, grid, PREPROCESS) == (row, col)
            inside = (left + 0.01 * (right - left), bottom - 0.01 * (bottom - top))
            assert engine.cell_at(size, *inside, grid, PREPROCESS) == (row, col)


def test_cell_box_is_the_region_the_processor_puts_in_that_cell(tiny_clip: TinyClip) -> None:
    """Paint one cell's box red in a grey image: after the real processor, exactly that cell of
    the 64x64 model input is red (up to a pixel of resampling blur at its border)."""
    processor = CLIPProcessor.from_pretrained(tiny_clip.base).image_processor
    preprocess = Preprocess.from_processor(processor)
    size, grid, cell = (300, 180), (4, 4), (2, 1)
    image = Image.new("RGB", size, (128, 128, 128))
    left, top, right, bottom = engine.cell_box(size, *cell, grid, preprocess)
    image.paste((255, 0, 0), (round(left), round(top), round(right), round(bottom)))
    pixels = processor(images=image, return_tensors="pt").pixel_values[0]
    red = (pixels[0] > 1.0) & (pixels[1] < -1.0)  # normalised red channel high, green low
    inner, outer = np.zeros((64, 64), bool), np.ones((64, 64), bool)
    row, col = cell
    inner[row * 16 + 2 : row * 16 + 14, col * 16 + 2 : col * 16 + 14] = True
    outer[row * 16 - 2 : row * 16 + 18, col * 16 - 2 : col * 16 + 18] = False
    assert red.numpy()[inner].all()
    assert not red.numpy()[outer].any()


@pytest.mark.parametrize(
    ("size", "grid"),
    [
        ((900, 900), (7, 7)),
        ((3000, 1500), (7, 14)),
        ((400, 1200), (21, 7)),
        ((5, 3), (7, 12)),  # 7 x 1.67 = 11.67
        ((1, 1), (7, 7)),
        ((333, 300), (7, 8)),  # 7 x 1.11 = 7.77
    ],
)
def test_the_painting_grid_tiles_the_whole_image(
    size: tuple[int, int], grid: tuple[int, int]
) -> None:
    assert engine.painting_grid(size) == grid
    boxes = engine.grid_boxes(size, grid)
    assert [len(row) for row in boxes] == [grid[1]] * grid[0]
    width, height = size
    for r, row in enumerate(boxes):
        for c, (left, top, right, bottom) in enumerate(row):
            assert left < right
            assert top < bottom
            # Neighbours share their edges exactly: no gaps, no overlaps.
            assert left == (0 if c == 0 else row[c - 1][2])
            assert top == (0 if r == 0 else boxes[r - 1][c][3])
            centre = ((left + right) / 2, (top + bottom) / 2)
            assert engine.grid_cell_at(size, *centre, grid) == (r, c)
        assert row[-1][2] == width
    assert boxes[-1][0][3] == height
    area = sum((b[2] - b[0]) * (b[3] - b[1]) for row in boxes for b in row)
    assert area == pytest.approx(width * height)
    # Cells are of one size, near-square (within half a cell of the aspect).
    cell_w, cell_h = width / grid[1], height / grid[0]
    assert abs(cell_w / cell_h - 1) <= 0.5 / min(grid) + 1e-9
    assert engine.grid_cell_at(size, width, height / 2, grid) is None


def test_windows_tile_the_long_side_with_half_overlaps() -> None:
    assert painting_windows((7, 7)) == [(0, 0)]
    assert painting_windows((7, 14)) == [(0, 0), (0, 4), (0, 7)]
    assert painting_windows((21, 7)) == [(0, 0), (4, 0), (7, 0), (10, 0), (14, 0)]
