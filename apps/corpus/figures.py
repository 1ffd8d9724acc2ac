"""Writes of figure search: embed the corpus's figure images and give each a thumbnail.

Run by ``manage.py embed_corpus --figures`` (and `load_demo`), in a process that may load the
models; web processes import this module's names without calling them (the engine imports
torch only when a model function runs).

Each figure is embedded with the view the analyses' query vectors use
(``settings.ANALYSIS_WHOLE_IMAGE``) and white-balanced as their figure vectors are
(``settings.FIGURE_WHITE_BALANCE``), so an uploaded painting and a plate of it are compared as
the same kind of vector. A run walks the figures lacking a vector for any requested key in
id order, one slice per commit, so an interrupted run resumes where it stopped and a repeated
run embeds nothing. An unreadable image is reported (`on_error`) and skipped; the others go on.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models.fields.files import FieldFile
from PIL import Image

from apps import engine
from apps.core.files import save_files
from apps.corpus import selectors
from apps.corpus.models import FigureEmbedding, WorkImage
from apps.corpus.vectors import store_figure_embeddings
from apps.engine.images import white_balanced

THUMBNAIL_SIZE = (480, 480)
DEFAULT_SLICE = 256
"""Figures per commit: a few seconds of a CPU's work, and one slice of decoded images in memory
(256 × a few MB at most)."""


@dataclass
class FigureRun:
    """What a run did: vectors written per key, figures read, figures that could not be read."""

    written: dict[str, int]
    read: int = 0
    unreadable: list[tuple[WorkImage, str]] = field(default_factory=list)


def thumbnail_bytes(picture: Image.Image) -> bytes:
    """A JPEG of at most THUMBNAIL_SIZE from the decoded RGB pixels alone: no EXIF, ICC or
    comment of the source file is carried over (Pillow writes only what it is given)."""
    copy = picture.copy()
    copy.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def store_thumbnail(figure: WorkImage, picture: Image.Image) -> None:
    """Write the figure's thumbnail (``corpus/thumbnails/<W>/<name>.jpg``) and save the row."""
    stem = PurePosixPath(figure.name).stem
    save_files((figure.thumbnail, f"{figure.work_id}/{stem}.jpg", thumbnail_bytes(picture)))
    figure.save(update_fields=["thumbnail"])


def ensure_thumbnail(figure: WorkImage) -> FieldFile:
    """The figure's thumbnail, written now from its image if the embedding run has not yet
    (a figure imported after the last run); OSError/ValueError if the image is unreadable."""
    if not figure.thumbnail:
        store_thumbnail(figure, read_figure(figure))
    return figure.thumbnail


def read_figure(figure: WorkImage) -> Image.Image:
    """The figure's pixels, RGB and upright; OSError/ValueError when the file is missing or not
    a readable image (Pillow's refusal of a decompression bomb is a ValueError here too)."""
    try:
        with figure.image.open("rb") as stored:
            picture = engine.load_image(stored.read())
        picture.load()
    except Image.DecompressionBombError as error:
        raise ValueError(str(error)) from None
    except SyntaxError as error:  # some Pillow decoders report a corrupt header so
        raise ValueError(str(error)) from None
    return picture


def forget_figure_vectors(keys: Sequence[str]) -> int:
    """Delete the figure vectors of `keys`, so that the next `embed_figures` writes them again
    (after a change of the view or the white balance); returns how many were deleted."""
    deleted, _ = FigureEmbedding.objects.filter(model__in=list(keys)).delete()
    return deleted


def embed_figures(
    keys: Sequence[str],
    *,
    slice_size: int = DEFAULT_SLICE,
    batch_size: int | None = None,
    on_error: Callable[[WorkImage, str], None] | None = None,
    on_slice: Callable[[int], None] | None = None,
) -> FigureRun:
    """Embed every figure that lacks a vector for any of `keys`, with the vision tower of each
    key; write missing thumbnails on the way. `on_error(figure, reason)` is told of each
    unreadable image, `on_slice(n)` of each slice done (n figures, read or not)."""
    run = FigureRun(written={key: 0 for key in keys})
    after = 0
    while True:
        rows = selectors.list_figures_missing_embeddings(keys, after=after, limit=slice_size)
        if not rows:
            return run
        after = rows[-1][0].pk
        readable: list[tuple[WorkImage, list[str], Image.Image]] = []
        for figure, missing in rows:
            try:
                picture = read_figure(figure)
            except (OSError, ValueError) as error:
                reason = str(error) or type(error).__name__
                run.unreadable.append((figure, reason))
                if on_error is not None:
                    on_error(figure, reason)
                continue
            readable.append((figure, missing, picture))
        run.read += len(readable)
        with transaction.atomic():
            for figure, _, picture in readable:
                if not figure.thumbnail:
                    store_thumbnail(figure, picture)
            for key in sorted({key for _, missing, _ in readable for key in missing}):
                picked = [
                    (figure, picture) for figure, missing, picture in readable if key in missing
                ]
                vectors = engine.embed_images(
                    [
                        white_balanced(picture, settings.FIGURE_WHITE_BALANCE)
                        for _, picture in picked
                    ],
                    key,
                    view=settings.ANALYSIS_WHOLE_IMAGE,
                    short_cells=settings.ANALYSIS_GRID_SHORT_CELLS,
                    batch_size=batch_size,
                )  # [N, D], unit rows
                run.written[key] += store_figure_embeddings(
                    key, [figure.pk for figure, _ in picked], np.asarray(vectors)
                )
        if on_slice is not None:
            on_slice(len(rows))
