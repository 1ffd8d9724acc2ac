"""Where image pixels land in the model's 224x224 input and its 7x7 patch grid, and in the
keep-aspect view's grid over the whole image.

The CLIP image processor resizes the shorter side to 224 and centre-crops 224x224. Training needs
this mapping to know which patches an object covers, and the evaluation needs it to pick the
grid cell that holds an object's centre; both must agree with the processor exactly, so the
arithmetic here mirrors it (``int`` truncation of the long side and of the crop offset).
"""

from __future__ import annotations

INPUT = 224
GRID = 7

Box = tuple[int, int, int, int]
FBox = tuple[float, float, float, float]


def processor_geometry(width: int, height: int, size: int = INPUT) -> tuple[float, float, int, int]:
    """(scale_x, scale_y, crop_left, crop_top) of shortest-edge resize plus centre crop."""
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    return new_w / width, new_h / height, int((new_w - size) / 2), int((new_h - size) / 2)


def to_model_box(box: Box, width: int, height: int) -> FBox:
    """A box in image pixels as a box in the 224x224 model input (may extend beyond it)."""
    sx, sy, left, top = processor_geometry(width, height)
    x0, y0, x1, y1 = box
    return x0 * sx - left, y0 * sy - top, x1 * sx - left, y1 * sy - top


def visible_share(model_box: FBox) -> float:
    """Share of a model-space box's area that lies inside the 224x224 crop."""
    x0, y0, x1, y1 = model_box
    iw = max(0.0, min(x1, INPUT) - max(x0, 0.0))
    ih = max(0.0, min(y1, INPUT) - max(y0, 0.0))
    area = max((x1 - x0) * (y1 - y0), 1e-6)
    return iw * ih / area


def centre_cell(model_box: FBox, grid: int = GRID) -> int | None:
    """Row-major index of the grid cell holding the box centre, or None when it is cropped away."""
    cx, cy = (model_box[0] + model_box[2]) / 2, (model_box[1] + model_box[3]) / 2
    if not (0 <= cx < INPUT and 0 <= cy < INPUT):
        return None
    cell = INPUT / grid
    return int(cy // cell) * grid + int(cx // cell)


def cells_inside(model_box: FBox, grid: int = GRID) -> list[int]:
    """Row-major indices of the cells whose centres lie inside the box."""
    cell = INPUT / grid
    x0, y0, x1, y1 = model_box
    return [
        r * grid + c
        for r in range(grid)
        for c in range(grid)
        if x0 <= (c + 0.5) * cell <= x1 and y0 <= (r + 0.5) * cell <= y1
    ]


def covered_cells(model_box: FBox, grid: int = GRID) -> list[int]:
    """``cells_inside``, falling back to the centre cell for boxes smaller than a cell."""
    cells = cells_inside(model_box, grid)
    if not cells:
        centre = centre_cell(model_box, grid)
        cells = [] if centre is None else [centre]
    return cells


def grid_cells_inside(box: Box, width: int, height: int, grid: tuple[int, int]) -> list[int]:
    """Row-major indices of the cells of a (rows, cols) grid laid over the whole image whose
    centres lie inside ``box`` (image pixels), falling back to the cell under the box centre.

    This is the keep-aspect view's geometry: the image is resized to the grid's patches, so
    every grid cell is one patch and nothing is cropped away.
    """
    rows, cols = grid
    cw, ch = width / cols, height / rows
    x0, y0, x1, y1 = box
    cells = [
        r * cols + c
        for r in range(rows)
        for c in range(cols)
        if x0 <= (c + 0.5) * cw <= x1 and y0 <= (r + 0.5) * ch <= y1
    ]
    if not cells:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        cells = [min(int(cy // ch), rows - 1) * cols + min(int(cx // cw), cols - 1)]
    return cells


def crop_around(box: Box, width: int, height: int, margin: float) -> Box:
    """A square around the box, ``margin`` of its longer side wider on every side, clamped.

    Square, so that the processor's centre crop does not cut the ends off tall or wide objects.
    """
    x0, y0, x1, y1 = box
    half = max(x1 - x0, y1 - y0) * (0.5 + margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (
        max(0, int(cx - half)),
        max(0, int(cy - half)),
        min(width, int(cx + half)),
        min(height, int(cy + half)),
    )
