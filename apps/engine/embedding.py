"""Text, image, crop and grid-cell embeddings: L2-normalised float32 numpy arrays.

Text throughput is what matters for a 3.1 M-sentence corpus, so `embed_texts_multi`:
- tokenises a chunk at once (the Rust tokenizer, called directly, in a background thread
  while the previous chunk is embedded; chunks grow from small so the model starts early),
  sorts it by token count and cuts batches from the sorted order, so each batch is padded
  only to its own longest sentence;
- passes no attention mask: CLIP's text encoder is causal and pools at the end-of-text token,
  which attends only to earlier (real) tokens, so right padding cannot change the result and
  the attention kernel can take its plain causal fast path;
- runs the text encoder ONCE for all model keys that share it (same base, adapters only on the
  projection layers, like PaintingCLIP) and applies each key's own `text_projection`;
- keeps results on the device until a chunk is done (no per-batch host synchronisation) and
  copies batches from pinned memory without blocking on CUDA.

Image embeddings come from one vision forward: every output token goes through the
post-layernorm and the visual projection; the class token is the image embedding and the patch
tokens, average-pooled to a grid, are the cell embeddings.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from apps.engine.images import (
    CELL_VIEWS,
    GRID_SHORT_CELLS,
    WHOLE_IMAGE_VIEWS,
    Box,
    ImageInput,
    cell_box,
    crop_box,
    grid_boxes,
    load_image,
    painting_grid,
    painting_windows,
)
from apps.engine.registry import LoadedModel, ModelRegistry, get_registry
from apps.engine.tokenizing import TokenizerPool, pool_size, rust_tokenizer, token_ids

Progress = Callable[[int, int], None]
"""Called as progress(done, total) after each batch."""

CHUNK_SIZE = 65_536
"""Sentences tokenised and sorted together: big enough that sorted batches are nearly
uniform in length, small enough that token lists stay a few hundred MB at most."""

FIRST_CHUNK_SIZE = 8_192

TOKENIZE_AHEAD = 2
"""Chunks being tokenised while the model embeds: two, so that a tokenizer slower than the
model (as on a GPU machine) never waits for the model to take a chunk."""


def embed_texts(
    texts: Sequence[str],
    model_key: str,
    *,
    batch_size: int | None = None,
    registry: ModelRegistry | None = None,
    amp: bool = False,
    progress: Progress | bool | None = None,
    tokenizer_workers: int | None = None,
) -> np.ndarray:
    """Embed `texts` with one model: float32 [N, D], rows L2-normalised, in input order.

    Sentences longer than the model's context (77 tokens for CLIP) are truncated. `amp=True`
    runs the encoder under autocast (bf16 where supported, else fp16) for fp32-weight models on
    a GPU. `batch_size` defaults to `default_batch_size(device)`. `progress=True` shows a
    tqdm bar; a callable receives (done, total).
    `tokenizer_workers` processes tokenise ahead of the model (default: none on a CPU, all
    cores but two on a GPU machine with 8 or more; see `apps.engine.tokenizing`).
    """
    return embed_texts_multi(
        texts,
        [model_key],
        batch_size=batch_size,
        registry=registry,
        amp=amp,
        progress=progress,
        tokenizer_workers=tokenizer_workers,
    )[model_key]


def embed_texts_multi(
    texts: Sequence[str],
    model_keys: Sequence[str],
    *,
    batch_size: int | None = None,
    registry: ModelRegistry | None = None,
    amp: bool = False,
    progress: Progress | bool | None = None,
    tokenizer_workers: int | None = None,
) -> dict[str, np.ndarray]:
    """Embed `texts` with several models: {key: float32 [N, D]}, each equal to `embed_texts`.

    Keys whose text encoders are identical (see `LoadedModel.shares_text_encoder_with`) share
    one encoder pass; only their projections differ.
    """
    registry = get_registry(registry)
    models = [registry.get(key) for key in dict.fromkeys(model_keys)]
    groups = _encoder_groups(models)
    if batch_size is None and models:
        batch_size = default_batch_size(models[0].device)
    outputs = {m.spec.key: np.empty((len(texts), m.embed_dim), dtype=np.float32) for m in models}
    chunks = _chunks(len(texts))
    with (
        _progress(progress, len(texts) * len(groups)) as advance,
        ThreadPoolExecutor(max_workers=TOKENIZE_AHEAD) as tokenizer_threads,
    ):
        for group in groups:
            encoder = group[0].text_encoder.for_texts(len(texts))
            with _tokenizer_pool(group[0], len(chunks), tokenizer_workers) as pool:
                # Tokenise the next chunks while the model embeds this one.
                def tokenize(index: int, lead: LoadedModel = group[0]) -> _Tokens:
                    chunk_texts = texts[chunks[index]]
                    if pool is None:
                        ids = token_ids(chunk_texts, lead.tokenizer, lead.max_text_length)
                    else:
                        ids = pool.token_ids(chunk_texts)
                    return _Tokens.of(ids, lead.tokenizer.pad_token_id)

                pending = deque(
                    tokenizer_threads.submit(tokenize, index)
                    for index in range(min(TOKENIZE_AHEAD, len(chunks)))
                )
                for index, chunk in enumerate(chunks):
                    tokens = pending.popleft().result()
                    if index + TOKENIZE_AHEAD < len(chunks):
                        pending.append(tokenizer_threads.submit(tokenize, index + TOKENIZE_AHEAD))
                    embedded = _embed_tokens(tokens, group, encoder, batch_size, amp, advance)
                    for key, values in embedded.items():
                        outputs[key][chunk] = values
    return outputs


def _tokenizer_pool(
    model: LoadedModel, chunk_count: int, workers: int | None
) -> contextlib.AbstractContextManager[TokenizerPool | None]:
    """A tokenizer process pool, when the input is more than one chunk and a pool pays off."""
    workers = pool_size(model.device.type) if workers is None else workers
    rust = rust_tokenizer(model.tokenizer, model.max_text_length)
    if workers < 1 or chunk_count < 2 or rust is None:
        return contextlib.nullcontext()
    return TokenizerPool(rust, workers)


def _chunks(total: int) -> list[slice]:
    """Chunks that double from `FIRST_CHUNK_SIZE` up to `CHUNK_SIZE`: the first chunk is
    tokenised before the model can start, so it is kept small, and each later one is tokenised
    while the model embeds the one before it, which takes longer than tokenising twice as many."""
    chunks, start, size = [], 0, FIRST_CHUNK_SIZE
    while start < total:
        chunks.append(slice(start, min(start + size, total)))
        start, size = start + size, min(2 * size, CHUNK_SIZE)
    return chunks


def default_batch_size(device: torch.device) -> int:
    """Sentences per text-encoder forward. Small on a CPU, where a batch's activations must stay
    in the cache: the B/32 text encoder on the 2-core dev VM ran 55, 59, 58, 49 and 29
    sentences/s at 8, 16, 32, 64 and 256 in fp32, and 90, 95, 105, 95 and 57 in bf16.
    Thousands on a GPU, which needs rows to fill its cores: on an H200, 4,096 ran 18 % faster
    than 2,048."""
    return {"cpu": 32, "cuda": 4096}.get(device.type, 256)


def _encoder_groups(models: list[LoadedModel]) -> list[list[LoadedModel]]:
    groups: list[list[LoadedModel]] = []
    for model in models:
        for group in groups:
            if all(model.shares_text_encoder_with(member) for member in group):
                group.append(model)
                break
        else:
            groups.append([model])
    return groups


@dataclass(frozen=True)
class _Tokens:
    """A chunk's token ids, flat, with each sentence's offset and length, and the order that
    sorts sentences longest first (so batches cut from it need almost no padding)."""

    flat: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    order: np.ndarray
    pad_id: int

    @classmethod
    def of(cls, ids: tuple[np.ndarray, np.ndarray], pad_id: int) -> _Tokens:
        flat, lengths = ids
        return cls(
            flat=flat,
            offsets=np.cumsum(lengths) - lengths,
            lengths=lengths,
            order=np.argsort(-lengths, kind="stable"),
            pad_id=pad_id,
        )

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, rows: np.ndarray) -> torch.Tensor:
        """Input ids [len(rows), longest], right-padded."""
        width = int(self.lengths[rows].max())
        columns = np.arange(width)
        inside = columns < self.lengths[rows, None]
        index = np.where(inside, self.offsets[rows, None] + columns, 0)
        return torch.from_numpy(np.where(inside, self.flat[index], self.pad_id))


def _embed_tokens(
    tokens: _Tokens,
    group: list[LoadedModel],
    encoder: Callable[..., Any],
    batch_size: int,
    amp: bool,
    advance: Callable[[int], None],
) -> dict[str, np.ndarray]:
    device = group[0].device
    results = {
        m.spec.key: torch.empty((len(tokens), m.embed_dim), dtype=torch.float32, device=device)
        for m in group
    }
    positions = torch.from_numpy(tokens.order).to(device)
    with torch.inference_mode(), _autocast(device, amp):
        for start in range(0, len(tokens), batch_size):
            rows = tokens.order[start : start + batch_size]
            input_ids = _to_device(tokens.batch(rows), device)
            pooled = encoder(input_ids=input_ids).pooler_output
            where = positions[start : start + len(rows)]
            for m in group:
                projected = m.clip.text_projection(pooled)
                results[m.spec.key][where] = F.normalize(projected.float(), dim=-1)
            advance(len(rows))
    return {key: values.cpu().numpy() for key, values in results.items()}


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if not amp:
        return contextlib.nullcontext()
    use_bf16 = device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16 if use_bf16 else torch.float16)


@contextlib.contextmanager
def _progress(progress: Progress | bool | None, total: int) -> Iterator[Callable[[int], None]]:
    if progress is True:
        with tqdm(total=total, unit="sent", desc="Embedding") as bar:
            yield bar.update
    elif callable(progress):
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total)

        yield advance
    else:
        yield lambda n: None


@dataclass(frozen=True)
class ImageAnalysis:
    """What the worker stores per image: the whole-image embedding, the grid of cells, and
    where both lie in the image."""

    embedding: np.ndarray
    """float32 [D], L2-normalised."""
    cells: np.ndarray
    """float32 [rows, cols, D], each cell L2-normalised."""
    view_box: Box
    """The part of the image the cells cover, in its pixels (the whole image unless the
    cells come from the centre crop)."""
    cell_boxes: list[list[Box]]
    """[rows][cols] boxes in image pixels; over the whole image they tile it exactly."""

    def cell_under(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, col) of the cell whose box holds image point (x, y); None outside them."""
        for row, boxes in enumerate(self.cell_boxes):
            for col, (left, top, right, bottom) in enumerate(boxes):
                if left <= x < right and top <= y < bottom:
                    return row, col
        return None


def analyse_image(
    image: ImageInput,
    model_key: str,
    *,
    view: str = "keep_aspect",
    cells: str | None = None,
    short_cells: int = GRID_SHORT_CELLS,
    registry: ModelRegistry | None = None,
) -> ImageAnalysis:
    """Image embedding and cell embeddings, each from the view of the image it names.

    `view` (one of `images.WHOLE_IMAGE_VIEWS`) gives the embedding; `cells` ("centre",
    "windows" or "keep_aspect"; default: `view`, and "keep_aspect" for "letterbox", which has
    no cells of its own) gives the grid. "centre" is the processor's centre square with a
    `short_cells` x `short_cells` grid over it; the other views cover the whole image with the
    `images.painting_grid` of near-square cells. One view is one vision forward (a batch, for
    "windows"); a view named twice runs once.
    """
    if view not in WHOLE_IMAGE_VIEWS:
        raise ValueError(f"view={view!r} is not one of {', '.join(WHOLE_IMAGE_VIEWS)}.")
    cells = cells or ("keep_aspect" if view == "letterbox" else view)
    if cells not in CELL_VIEWS:
        raise ValueError(f"cells={cells!r} is not one of {', '.join(CELL_VIEWS)}.")
    model = get_registry(registry).get(model_key)
    picture = load_image(image)
    seen = {
        name: _VIEWS[name](model, picture, short_cells) for name in dict.fromkeys((view, cells))
    }
    grid = seen[cells]
    return ImageAnalysis(
        embedding=_normalised(seen[view].embedding),
        cells=F.normalize(grid.cells, dim=-1).cpu().numpy(),
        view_box=grid.view_box,
        cell_boxes=grid.cell_boxes,
    )


@dataclass(frozen=True)
class _View:
    """One view's class-token embedding [D] and cells [rows, cols, D] (neither normalised;
    `cells` is empty for a view without cells), with their boxes in image pixels."""

    embedding: torch.Tensor
    cells: torch.Tensor
    view_box: Box
    cell_boxes: list[list[Box]]


def _centre_view(model: LoadedModel, picture: Image.Image, short_cells: int) -> _View:
    preprocess, grid = model.preprocess, (short_cells, short_cells)
    tokens = _tokens(model, preprocess.pixel_values([picture]))[0]
    return _View(
        embedding=tokens[0],
        cells=_pool_patches(
            tokens[1:], _patch_grid(preprocess.crop_height, preprocess.crop_width, model), grid
        ),
        view_box=crop_box(picture.size, preprocess),
        cell_boxes=[
            [cell_box(picture.size, row, col, grid, preprocess) for col in range(short_cells)]
            for row in range(short_cells)
        ],
    )


def _letterbox_view(model: LoadedModel, picture: Image.Image, short_cells: int) -> _View:
    tokens = _tokens(model, model.preprocess.letterbox_pixel_values(picture))[0]
    whole = (0.0, 0.0, float(picture.width), float(picture.height))
    return _View(tokens[0], tokens.new_empty((0, 0, tokens.shape[-1])), whole, [])


def _keep_aspect_view(model: LoadedModel, picture: Image.Image, short_cells: int) -> _View:
    preprocess = model.preprocess
    side = min(preprocess.crop_height, preprocess.crop_width)
    pixels = preprocess.aspect_pixel_values(picture, side, model.patch_size)
    tokens = _tokens(model, pixels, interpolate=True)[0]
    grid = painting_grid(picture.size, short_cells)
    patches = _patch_grid(pixels.shape[2], pixels.shape[3], model)
    return _View(
        embedding=tokens[0],
        cells=_pool_patches(tokens[1:], patches, grid),
        view_box=(0.0, 0.0, float(picture.width), float(picture.height)),
        cell_boxes=grid_boxes(picture.size, grid),
    )


def _windows_view(model: LoadedModel, picture: Image.Image, short_cells: int) -> _View:
    """Square windows of `short_cells` cells tiling the painting's grid (`painting_windows`):
    the embedding is the mean of the windows' unit embeddings, each cell the mean of the
    pooled patch tokens of the windows that hold it."""
    preprocess = model.preprocess
    grid = painting_grid(picture.size, short_cells)
    boxes = grid_boxes(picture.size, grid)
    side = short_cells
    starts = painting_windows(grid)
    crops = [
        picture.crop(
            tuple(round(v) for v in (*boxes[r][c][:2], *boxes[r + side - 1][c + side - 1][2:]))
        )
        for r, c in starts
    ]
    tokens = _tokens(model, preprocess.stretched_pixel_values(crops))
    patches = _patch_grid(preprocess.crop_height, preprocess.crop_width, model)
    total = tokens.new_zeros((*grid, tokens.shape[-1]))
    count = tokens.new_zeros((*grid, 1))
    for (r, c), window in zip(starts, tokens, strict=True):
        total[r : r + side, c : c + side] += _pool_patches(window[1:], patches, (side, side))
        count[r : r + side, c : c + side] += 1
    return _View(
        embedding=F.normalize(tokens[:, 0], dim=-1).mean(0),
        cells=total / count,
        view_box=(0.0, 0.0, float(picture.width), float(picture.height)),
        cell_boxes=boxes,
    )


_VIEWS: dict[str, Callable[[LoadedModel, Image.Image, int], _View]] = {
    "centre": _centre_view,
    "letterbox": _letterbox_view,
    "windows": _windows_view,
    "keep_aspect": _keep_aspect_view,
}


def embed_image(
    image: ImageInput, model_key: str, *, registry: ModelRegistry | None = None
) -> np.ndarray:
    """The image's embedding, float32 [D], L2-normalised (the model sees the centre crop)."""
    model = get_registry(registry).get(model_key)
    return _normalised(_tokens(model, model.preprocess.pixel_values([load_image(image)]))[0, 0])


def embed_images(
    images: Sequence[ImageInput],
    model_key: str,
    *,
    view: str = "keep_aspect",
    short_cells: int = GRID_SHORT_CELLS,
    batch_size: int | None = None,
    registry: ModelRegistry | None = None,
) -> np.ndarray:
    """Whole-image embeddings float32 [N, D], L2-normalised, each equal to
    `analyse_image(image, model_key, view=view).embedding` (the corpus's figures are embedded
    with the view the analyses' query vectors use, so the two are comparable).

    Batched where the view allows: "centre" and "letterbox" inputs are all the model's square;
    "keep_aspect" inputs [3, H, W] are grouped by their patch grid (one batch per shape, in
    order of first appearance); "windows" runs image by image. Output rows keep input order.
    """
    if view not in WHOLE_IMAGE_VIEWS:
        raise ValueError(f"view={view!r} is not one of {', '.join(WHOLE_IMAGE_VIEWS)}.")
    model = get_registry(registry).get(model_key)
    preprocess = model.preprocess
    size = batch_size or default_batch_size(model.device)
    pictures = [load_image(image) for image in images]
    out = np.zeros((len(pictures), model.embed_dim), dtype=np.float32)
    if view == "windows":
        for i, picture in enumerate(pictures):
            out[i] = _normalised(_windows_view(model, picture, short_cells).embedding)
        return out
    groups: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
    side = min(preprocess.crop_height, preprocess.crop_width)
    for i, picture in enumerate(pictures):
        if view == "centre":
            pixels = preprocess.pixel_values([picture])
        elif view == "letterbox":
            pixels = preprocess.letterbox_pixel_values(picture)
        else:
            pixels = preprocess.aspect_pixel_values(picture, side, model.patch_size)
        groups.setdefault(pixels.shape[1:], []).append((i, pixels[0]))
    for members in groups.values():
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            batch = np.stack([pixels for _, pixels in chunk])  # [B, 3, H, W]
            tokens = _tokens(model, batch, interpolate=view == "keep_aspect")  # [B, 1 + P, D]
            vectors = _normalised(tokens[:, 0])  # [B, D]
            for (i, _), vector in zip(chunk, vectors, strict=True):
                out[i] = vector
    return out


def embed_crop(
    image: ImageInput, box: Box, model_key: str, *, registry: ModelRegistry | None = None
) -> np.ndarray:
    """Embedding of the region `box` = (left, top, right, bottom) in original-image pixels.

    The region is cut from the original image and encoded afresh (resize + centre crop of the
    region itself), so it gets the model's full resolution rather than a few pooled patches.
    """
    picture = load_image(image)
    width, height = picture.size
    left, top, right, bottom = (round(v) for v in box)
    left, right = max(0, left), min(width, right)
    top, bottom = max(0, top), min(height, bottom)
    if right <= left or bottom <= top:
        raise ValueError(f"The box {box} does not overlap the {width}x{height} image.")
    return embed_image(picture.crop((left, top, right, bottom)), model_key, registry=registry)


def cell_embeddings(
    image: ImageInput,
    model_key: str,
    grid: tuple[int, int] = (7, 7),
    *,
    registry: ModelRegistry | None = None,
) -> np.ndarray:
    """Grid-cell embeddings float32 [rows, cols, D]: patch tokens -> post-layernorm -> visual
    projection -> adaptive average pool to `grid` -> L2 norm. For ViT-B/32 at 224 px the patch
    grid is 7x7, so each cell is exactly one patch. `cell_box` maps a cell to image pixels."""
    model = get_registry(registry).get(model_key)
    preprocess = model.preprocess
    tokens = _tokens(model, preprocess.pixel_values([load_image(image)]))[0]
    patches = _patch_grid(preprocess.crop_height, preprocess.crop_width, model)
    return F.normalize(_pool_patches(tokens[1:], patches, grid), dim=-1).cpu().numpy()


def _tokens(model: LoadedModel, pixels: np.ndarray, *, interpolate: bool = False) -> torch.Tensor:
    """All output tokens of the vision tower in the joint embedding space: [B, 1 + P, D]
    (class token first) for model input `pixels` [B, 3, H, W]. The class token equals
    `CLIPModel.get_image_features`. `interpolate` interpolates the position embeddings, for
    input that is not the model's square."""
    pixel_values = torch.from_numpy(pixels).to(model.device, model.dtype)
    with torch.inference_mode():
        if interpolate:
            return model.vision_encoder.run(pixel_values, interpolate_pos_encoding=True).float()
        return model.vision_encoder.run(pixel_values).float()


def warm_up(registry: ModelRegistry | None = None) -> None:
    """Embed a blank image with every loaded model: a compiled (int8) vision encoder compiles
    now, at a worker's start, instead of in the first researcher's job. Pillow's common
    decoders are imported now too: the first `Image.open` imports them (90 ms seen in the
    first job of a worker)."""
    Image.preinit()
    registry = get_registry(registry)
    for key, state in registry.status().items():
        if state["loaded"]:
            side = registry.get(key).preprocess.shortest_edge
            embed_image(Image.new("RGB", (side, side)), key, registry=registry)


def _patch_grid(height: int, width: int, model: LoadedModel) -> tuple[int, int]:
    """(rows, cols) of patches of model input `height` x `width` pixels."""
    return height // model.patch_size, width // model.patch_size


def _pool_patches(
    patches: torch.Tensor, patch_grid: tuple[int, int], grid: tuple[int, int]
) -> torch.Tensor:
    """Patch tokens [P, D], row-major over `patch_grid`, average-pooled to `grid`:
    [rows, cols, D], not normalised."""
    planes = patches.reshape(*patch_grid, -1).permute(2, 0, 1)
    return F.adaptive_avg_pool2d(planes, grid).permute(1, 2, 0)


def _normalised(vector: torch.Tensor) -> np.ndarray:
    return F.normalize(vector, dim=-1).cpu().numpy()
