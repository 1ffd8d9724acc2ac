"""Training data for the demo CLIP: cached model inputs, per-cell labels and caption batches.

Scenes are rendered once and stored as the image processor's 224x224 output in uint8, so a
training step only normalises and runs the model. Every whole image keeps the objects visible in
the processor's centre crop, the patch cells each one covers and a 7x7 label map (kind and colour
of the object drawn on top at each cell centre); every object crop keeps its object.

`build_aspect_bank` caches whole scenes as the engine's keep-aspect view sees them (the whole
image resized to a non-square patch grid, run with interpolated position embeddings), so the
model also learns the positions and the framing of whole paintings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm
from transformers import CLIPImageProcessor

from apps.demo.geometry import (
    GRID,
    cells_inside,
    centre_cell,
    covered_cells,
    crop_around,
    grid_cells_inside,
    to_model_box,
    visible_share,
)
from apps.demo.grammar import (
    KINDS,
    ObjectFacts,
    SceneFacts,
    distractor_sentence,
    object_sentence,
    pair_sentence,
)
from apps.demo.scenes import COLOURS, draw_order, generate_scene, render_painterly, render_plain

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
KIND_INDEX = {k: i for i, k in enumerate(KINDS)}
COLOUR_INDEX = {c: i for i, c in enumerate(COLOURS)}

Fact = tuple[str, str]


@dataclass
class Bank:
    """Cached model inputs and what each shows.

    ``objects[i]`` are the visible objects of item i (one for a crop), ``cells[i][k]`` the cells
    object k covers (empty for crops), ``labels`` [N, 2, cells] the kind/colour index + 1 at
    each cell centre (0 = background; all zero for crops); 49 cells for the 224x224 input,
    rows x cols for a keep-aspect bank of that ``grid``.
    """

    pixels: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    labels: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    scenes: list[SceneFacts] = field(default_factory=list)
    objects: list[tuple[ObjectFacts, ...]] = field(default_factory=list)
    cells: list[tuple[tuple[int, ...], ...]] = field(default_factory=list)
    grid: tuple[int, int] = (GRID, GRID)

    def __len__(self) -> int:
        return len(self.objects)


def build_banks(
    seeds: range, painterly: bool, processor: CLIPImageProcessor, rng: random.Random
) -> tuple[Bank, Bank]:
    """Render scenes and cache whole-image and object-crop model inputs with their truth."""
    whole, crops = Bank(), Bank()
    pending: dict[str, list[Image.Image]] = {"whole": [], "crops": []}
    parts: dict[str, list[torch.Tensor]] = {"whole": [], "crops": []}
    labels: list[torch.Tensor] = []
    style = "painterly" if painterly else "plain"
    for seed in tqdm(seeds, desc=f"{style} scenes", unit="scene", leave=False):
        scene = generate_scene(seed)
        img = render_painterly(scene) if painterly else render_plain(scene)
        facts = scene.facts()
        fact_of = dict(zip(scene.objects, facts.objects, strict=True))
        visible: list[ObjectFacts] = []
        visible_cells: list[tuple[int, ...]] = []
        label = torch.zeros(2, GRID * GRID, dtype=torch.long)
        for obj in draw_order(scene):
            box = to_model_box(obj.box, scene.width, scene.height)
            for cell in cells_inside(box):
                label[0, cell] = KIND_INDEX[obj.kind] + 1
                label[1, cell] = COLOUR_INDEX[obj.colour] + 1
            cells = covered_cells(box)
            if visible_share(box) >= 0.5 and centre_cell(box) is not None and cells:
                visible.append(fact_of[obj])
                visible_cells.append(tuple(cells))
            margin = rng.uniform(0.05, 0.45)
            pending["crops"].append(
                img.crop(crop_around(obj.box, scene.width, scene.height, margin))
            )
            crops.scenes.append(facts)
            crops.objects.append((fact_of[obj],))
            crops.cells.append(())
        if visible:
            pending["whole"].append(img)
            whole.scenes.append(facts)
            whole.objects.append(tuple(visible))
            whole.cells.append(tuple(visible_cells))
            labels.append(label)
        # Convert as we go: full-size PIL images would otherwise pile up to gigabytes.
        for name, images in pending.items():
            if len(images) >= 128:
                parts[name].append(to_uint8(images, processor))
                images.clear()
    for name, images in pending.items():
        parts[name].append(to_uint8(images, processor))
    whole.pixels = torch.cat(parts["whole"])
    crops.pixels = torch.cat(parts["crops"])
    whole.labels = torch.stack(labels) if labels else torch.zeros(0, 2, GRID * GRID)
    crops.labels = torch.zeros(len(crops), 2, GRID * GRID, dtype=torch.long)
    return whole, crops


ASPECT_GRIDS = ((7, 9), (9, 7), (7, 14), (14, 7))
"""(rows, cols) of the keep-aspect training views, the engine's grids (`painting_grid`) for
paintings of about 9:7 (the wider of the ordinary scenes) and 2:1, landscape and portrait:
224 x 288 and 224 x 448 px at 32-px patches. Each view gets its own share of the seeds."""


def build_aspect_bank(
    seeds: range, painterly: bool, grid: tuple[int, int], processor: CLIPImageProcessor
) -> Bank:
    """Whole scenes of the grid's shape, as the engine's keep-aspect view gives them to the
    model: resized to rows x cols patches (the processor's resampling, no crop), every object
    visible, the cells it covers and a label map on the grid. No crops: those stay square."""
    rows, cols = grid
    patch = processor.crop_size["height"] // GRID
    size = (cols * patch, rows * patch)
    bank = Bank(grid=grid)
    arrays: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    style = "painterly" if painterly else "plain"
    for seed in tqdm(seeds, desc=f"{style} scenes {rows}x{cols}", unit="scene", leave=False):
        scene = generate_scene(seed, aspect=cols / rows)
        if not scene.objects:
            continue
        img = render_painterly(scene) if painterly else render_plain(scene)
        facts = scene.facts()
        fact_of = dict(zip(scene.objects, facts.objects, strict=True))
        label = torch.zeros(2, rows * cols, dtype=torch.long)
        cell_lists = []
        for obj in draw_order(scene):
            cells = grid_cells_inside(obj.box, scene.width, scene.height, grid)
            for cell in cells:
                label[0, cell] = KIND_INDEX[obj.kind] + 1
                label[1, cell] = COLOUR_INDEX[obj.colour] + 1
            cell_lists.append((fact_of[obj], tuple(cells)))
        resized = img.resize(size, resample=Image.Resampling(int(processor.resample)))
        arrays.append(torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1))
        bank.scenes.append(facts)
        bank.objects.append(tuple(fact for fact, _ in cell_lists))
        bank.cells.append(tuple(cells for _, cells in cell_lists))
        labels.append(label)
    bank.pixels = torch.stack(arrays) if arrays else torch.empty(0, 3, size[1], size[0])
    bank.labels = torch.stack(labels) if labels else torch.empty(0, 2, rows * cols)
    return bank


def to_uint8(images: list[Image.Image], processor: CLIPImageProcessor) -> torch.Tensor:
    """Run the real image processor, then store its output compactly as uint8."""
    if not images:
        return torch.empty(0, 3, 224, 224, dtype=torch.uint8)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = processor(images=images, return_tensors="pt")["pixel_values"]
    return ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 cache -> the normalised float input the image processor would have produced."""
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels.float() / 255 - mean) / std


Caption = tuple[tuple[ObjectFacts, ...], SceneFacts | None]


@dataclass
class Batch:
    """Which items a step uses, what each caption must say and who matches whom.

    Captions come in this order: one about each whole image's focal object, one per crop, then
    extras (pair sentences, mismatched pairs, distractors). The cell terms reuse the focal
    captions. Weight matrices are images x captions.
    """

    whole_idx: list[int]
    focal: list[int]
    crop_idx: list[int]
    captions: list[Caption]
    weights_whole: torch.Tensor
    weights_crop: torch.Tensor
    weights_cell: torch.Tensor

    def cell_lists(self, whole: Bank) -> list[tuple[int, ...]]:
        return [whole.cells[i][k] for i, k in zip(self.whole_idx, self.focal, strict=True)]


def write_caption(caption: Caption, rng: random.Random) -> str:
    """A fresh sentence for a caption slot: a distractor, one object, or a pair."""
    objects, scene = caption
    if not objects or scene is None:
        return distractor_sentence(rng)
    if len(objects) == 1:
        return object_sentence(objects[0], scene, rng)
    return pair_sentence(objects[0], objects[1], scene, rng)


def sample_batch(
    whole: Bank,
    crops: Bank,
    size: int,
    crop_size: int,
    rng: random.Random,
    pairs: int = 0,
    distractors: int = 0,
) -> Batch:
    """Draw whole images (one focal object each), object crops and extra captions.

    Half of the ``pairs`` name two objects of one image; the other half pair an object with one
    from another image, a hard negative for images that show only one of them. ``distractors``
    are non-visual sentences that must match no image.
    """
    wi = [rng.randrange(len(whole)) for _ in range(size)]
    focal = [rng.randrange(len(whole.objects[i])) for i in wi]
    ci = [rng.randrange(len(crops)) for _ in range(crop_size)]
    captions: list[Caption] = [
        ((whole.objects[i][k],), whole.scenes[i]) for i, k in zip(wi, focal, strict=True)
    ]
    captions += [(crops.objects[j], crops.scenes[j]) for j in ci]
    for p in range(pairs):
        i = rng.choice(wi)
        first = rng.choice(whole.objects[i])
        if p % 2 == 0 and len(whole.objects[i]) >= 2:
            second = rng.choice([o for o in whole.objects[i] if o is not first])
        else:
            second = rng.choice(whole.objects[rng.randrange(len(whole))])
        if second.kind != first.kind:
            captions.append(((first, second), whole.scenes[i]))
    captions += [((), None)] * distractors
    said = [frozenset(_fact(o) for o in objects) for objects, _ in captions]
    shown_whole = [frozenset(_fact(o) for o in whole.objects[i]) for i in wi]
    shown_crop = [frozenset({_fact(crops.objects[j][0])}) for j in ci]
    shown_cell = said[:size]
    return Batch(
        wi,
        focal,
        ci,
        captions,
        match_weights(shown_whole, said),
        match_weights(shown_crop, said),
        match_weights(shown_cell, said),
    )


def _fact(obj: ObjectFacts) -> Fact:
    return obj.kind, obj.colour


def match_weights(shown: list[frozenset[Fact]], said: list[frozenset[Fact]]) -> torch.Tensor:
    """1 where an image shows every (kind, colour) a caption says, 0.5 where only the kinds match.

    Soft multi-positive targets: in-batch captions that truly describe an image are not pushed
    away as negatives. A caption that says nothing (a distractor) matches no image.
    """
    shown_facts, shown_kinds = _multi_hot(shown)
    said_facts, said_kinds = _multi_hot(said)
    said_any = said_kinds.sum(1) > 0
    full = (said_facts @ (1 - shown_facts).T == 0).T & said_any
    kinds = (said_kinds @ (1 - shown_kinds).T == 0).T & said_any
    return torch.where(full, 1.0, torch.where(kinds, 0.5, 0.0))


def _multi_hot(sets: list[frozenset[Fact]]) -> tuple[torch.Tensor, torch.Tensor]:
    facts = torch.zeros(len(sets), len(KIND_INDEX) * len(COLOUR_INDEX))
    kinds = torch.zeros(len(sets), len(KIND_INDEX))
    for row, items in enumerate(sets):
        for kind, colour in items:
            facts[row, KIND_INDEX[kind] * len(COLOUR_INDEX) + COLOUR_INDEX[colour]] = 1
            kinds[row, KIND_INDEX[kind]] = 1
    return facts, kinds
