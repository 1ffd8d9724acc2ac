"""Model-input geometry agrees with the real image processor and with the engine."""

import numpy as np
import pytest
from PIL import Image
from transformers import CLIPImageProcessor

from apps.demo.geometry import cells_inside, centre_cell, crop_around, to_model_box
from apps.engine import Preprocess, cell_at


@pytest.mark.parametrize(("width", "height"), [(400, 300), (250, 611), (333, 333), (640, 201)])
def test_marker_lands_where_predicted(width, height):
    processor = CLIPImageProcessor()
    box = (int(width * 0.55), int(height * 0.4), int(width * 0.62), int(height * 0.5))
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[box[1] : box[3], box[0] : box[2]] = 255
    x = processor(images=Image.fromarray(pixels), return_tensors="pt")["pixel_values"][0]
    ys, xs = np.nonzero(x.mean(0).numpy() > 1.0)
    x0, y0, x1, y1 = to_model_box(box, width, height)
    assert abs(xs.min() - x0) <= 2
    assert abs(xs.max() + 1 - x1) <= 2
    assert abs(ys.min() - y0) <= 2
    assert abs(ys.max() + 1 - y1) <= 2


@pytest.mark.parametrize(("width", "height"), [(400, 300), (250, 611), (640, 201)])
def test_centre_cell_matches_engine(width, height):
    preprocess = Preprocess.from_processor(CLIPImageProcessor())
    rng = np.random.default_rng(0)
    for _ in range(50):
        x, y = rng.uniform(0, width - 2), rng.uniform(0, height - 2)
        ours = centre_cell(to_model_box((x, y, x + 1e-6, y + 1e-6), width, height))
        theirs = cell_at((width, height), x, y, (7, 7), preprocess)
        assert ours == (None if theirs is None else theirs[0] * 7 + theirs[1])


def test_cells_inside_and_crop():
    assert cells_inside((0, 0, 224, 224)) == list(range(49))
    assert cells_inside((0, 0, 10, 10)) == []
    assert crop_around((100, 100, 120, 160), 200, 200, 0.25) == (65, 85, 155, 175)
    assert crop_around((0, 150, 20, 200), 200, 200, 0.5) == (0, 125, 60, 200)
