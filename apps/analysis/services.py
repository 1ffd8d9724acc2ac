"""Writes of the analysis app: creating analyses, running them, ranking, heatmaps.

The model work (`run_analysis`, `compute_heatmaps`, `compute_query_vector`) runs in RQ
workers through :mod:`apps.analysis.jobs`; everything else runs in the web process, which never
imports torch: a text query is embedded by a worker (`embed_query`) and overlays are drawn with
Pillow.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath

import django_rq
import numpy as np
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from PIL import Image
from rq import Callback

from apps import engine
from apps.analysis import selectors
from apps.analysis.models import (
    Analysis,
    AnalysisEmbedding,
    AnalysisResult,
    ExampleImage,
    Heatmap,
    IiifSource,
    ResultQuery,
)
from apps.analysis.uploads import inspect_image, validate_image
from apps.core.db import retry_on_lost_connection
from apps.core.errors import ApplicationError, ServiceUnavailableError
from apps.core.files import StorageFullError, save_files
from apps.core.logs import job_meta
from apps.core.paths import without_server_paths
from apps.corpus.models import Creator, Sentence, Topic
from apps.corpus.selectors import SentenceHit, get_stored_embeddings, search_sentences
from apps.engine.config import engine_config, model_keys
from apps.engine.images import white_balanced

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = (480, 480)
MIN_CROP_SIDE = 8


@dataclass(frozen=True)
class Filters:
    model_key: str
    topics: list[Topic]
    creators: list[Creator]


def resolve_filters(
    model_key: str, topic_ids: Sequence[str], creator_ids: Sequence[str]
) -> Filters:
    """Resolve a model key and filter ids, naming the first unknown one."""
    keys = model_keys()
    if model_key not in keys:
        raise ApplicationError(
            "unknown_model", f"There is no model {model_key!r}; choose one of {', '.join(keys)}."
        )
    topics = list(Topic.objects.filter(id__in=topic_ids))
    unknown = sorted(set(topic_ids) - {topic.id for topic in topics})
    if unknown:
        raise ApplicationError("unknown_topic", f"There is no topic {unknown[0]!r}.")
    creators = list(Creator.objects.filter(slug__in=creator_ids))
    unknown = sorted(set(creator_ids) - {creator.slug for creator in creators})
    if unknown:
        raise ApplicationError("unknown_creator", f"There is no creator {unknown[0]!r}.")
    return Filters(model_key=model_key, topics=topics, creators=creators)


def resolve_crop(crop: Sequence[float] | None, width: int, height: int) -> list[int] | None:
    """A crop box (left, top, right, bottom) in original-image pixels, inside the image."""
    if crop is None:
        return None
    if len(crop) != 4:
        raise ApplicationError("bad_crop", "A crop is four numbers: left, top, right, bottom.")
    left, top, right, bottom = (round(float(value)) for value in crop)
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise ApplicationError(
            "bad_crop",
            f"The crop {left}, {top}, {right}, {bottom} does not lie inside the "
            f"{width} × {height} px image.",
        )
    if min(right - left, bottom - top) < MIN_CROP_SIDE:
        raise ApplicationError(
            "bad_crop", f"The crop must be at least {MIN_CROP_SIDE} px wide and high."
        )
    return [left, top, right, bottom]


def _thumbnail(image: Image.Image) -> bytes:
    thumbnail = image.copy()
    thumbnail.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _reduced(image: Image.Image) -> bytes:
    """`image` shrunk by a whole factor (box filter) to no less than ANALYSIS_REDUCED_SIDE on its
    short side, as uncompressed PPM. Stored with the upload so that the worker's whole-image
    passes read a few hundred pixels instead of decoding the full file a second time (for a
    3-MB JPEG that decode was a fifth of the worker's time). PPM because the copy is read by
    the worker only: writing and reading it take 0.1 ms, where PNG took 6 and 2 ms."""
    factor = max(1, min(image.size) // settings.ANALYSIS_REDUCED_SIDE)
    reduced = image.reduce(factor) if factor > 1 else image
    buffer = io.BytesIO()
    reduced.save(buffer, format="PPM")
    return buffer.getvalue()


def create_analysis(
    *,
    owner,
    data: bytes,
    filename: str,
    model_key: str,
    crop: Sequence[float] | None = None,
    topic_ids: Sequence[str] = (),
    creator_ids: Sequence[str] = (),
    parent: Analysis | None = None,
) -> Analysis:
    """Validate an upload, store a clean copy and queue its analysis (`parent`: the analysis
    a region analysis was cut from).

    Every check runs before anything is written, so a refused upload leaves no file, row or job.
    """
    # The size again as `inspect_image` checks it, here so that a file far too large is
    # refused before it counts against the owner's uploads in progress.
    if len(data) > settings.ANALYSIS_MAX_UPLOAD_BYTES:
        raise ApplicationError(
            "file_too_large",
            f"The file is {len(data) / 1_000_000:.1f} MB; the limit is "
            f"{settings.ANALYSIS_MAX_UPLOAD_BYTES / 1_000_000:.1f} MB.",
        )
    with upload_slot(owner):
        return _create_analysis(
            owner=owner,
            data=data,
            filename=filename,
            model_key=model_key,
            crop=crop,
            topic_ids=topic_ids,
            creator_ids=creator_ids,
            parent=parent,
        )


UPLOAD_SLOT_SECONDS = 600
"""How long an upload in progress counts, at most: a web process killed mid-upload leaves
its count behind for no longer than that."""


@contextlib.contextmanager
def upload_slot(owner) -> Iterator[None]:
    """Count this upload as in progress for `owner` while it is validated and stored, after
    checking the owner's quotas (`check_upload_quota`) with the uploads already in progress.

    Uploads in progress count because the costly part, decoding and re-encoding the image,
    comes before any row exists: eight parallel uploads of one researcher would otherwise all
    pass a check of the rows alone, and hold every web thread meanwhile.
    """
    key = f"uploads-in-progress:{owner.pk}"
    try:
        cache.add(key, 0, timeout=UPLOAD_SLOT_SECONDS)
        others = cache.incr(key) - 1
    except redis.RedisError:
        # No Redis, no job queue: refuse before anything is decoded or written.
        raise ServiceUnavailableError(
            "queue_unavailable",
            "The job queue cannot be reached just now, so nothing was stored; "
            "try again in a minute.",
        ) from None
    try:
        check_upload_quota(owner, in_progress=others)
        yield
    finally:
        # ValueError: the count expired meanwhile; RedisError: Redis went away meanwhile.
        with contextlib.suppress(ValueError, redis.RedisError):
            cache.decr(key)


def check_upload_quota(owner, *, in_progress: int = 0) -> None:
    """Refuse with 429 an upload past ANALYSIS_MAX_ACTIVE_JOBS analyses queued or running at
    once, or past ANALYSIS_UPLOADS_PER_HOUR, `in_progress` other uploads counting as both."""
    running = (Analysis.Status.QUEUED, Analysis.Status.RUNNING)
    active = in_progress + Analysis.objects.filter(owner=owner, status__in=running).count()
    if active >= settings.ANALYSIS_MAX_ACTIVE_JOBS:
        raise ApplicationError(
            "too_many_active",
            f"You have {active} analyses queued or running, the most at once; wait for one "
            "to finish, or cancel one, then upload again.",
            status=429,
        )
    since = timezone.now() - timedelta(hours=1)
    recent = in_progress + Analysis.objects.filter(owner=owner, created_at__gte=since).count()
    if recent >= settings.ANALYSIS_UPLOADS_PER_HOUR:
        raise ApplicationError(
            "upload_quota",
            f"You have uploaded {recent} images in the last hour, the limit; try again later.",
            status=429,
        )


_decoding = 0
_decoding_lock = threading.Lock()


@contextlib.contextmanager
def decode_slot() -> Iterator[None]:
    """Count this upload among the ANALYSIS_PARALLEL_DECODES this process decodes and
    re-encodes at once (seconds for a large image), or refuse it at once with 503 `busy`.

    The per-researcher quotas bound what one researcher holds; this bounds what all of them
    hold together, so that uploads never take every web thread: reading pages and health
    checks keep the rest. Refused at once rather than queued, as a waiting upload would hold
    its thread all the same.
    """
    global _decoding
    with _decoding_lock:
        if _decoding >= settings.ANALYSIS_PARALLEL_DECODES:
            raise ServiceUnavailableError(
                "busy",
                "The server is preparing other uploads just now, so nothing was stored; try "
                "again in a few seconds.",
            )
        _decoding += 1
    try:
        yield
    finally:
        with _decoding_lock:
            _decoding -= 1


def _create_analysis(
    *,
    owner,
    data: bytes,
    filename: str,
    model_key: str,
    crop: Sequence[float] | None,
    topic_ids: Sequence[str],
    creator_ids: Sequence[str],
    parent: Analysis | None,
) -> Analysis:
    with decode_slot():
        header = inspect_image(
            data,
            max_bytes=settings.ANALYSIS_MAX_UPLOAD_BYTES,
            max_pixels=settings.ANALYSIS_MAX_PIXELS,
        )
        prepare_now = (
            not header.needs_pixels
            or header.width * header.height <= settings.ANALYSIS_REQUEST_DECODE_PIXELS
        )
        copies = _stored_copies(data) if prepare_now else None
    filters = resolve_filters(model_key, topic_ids, creator_ids)
    box = resolve_crop(crop, header.width, header.height)

    stem = uuid.uuid4().hex
    analysis = Analysis(
        owner=owner,
        original_filename=filename[:255],
        file_size=len(data),
        width=header.width,
        height=header.height,
        crop=box,
        model_key=filters.model_key,
        job_id=_new_job_id(),
        parent=parent,
    )
    if copies is not None:
        save_files(*_copy_files(analysis, stem, copies))
    else:
        # Kept as it came, under a name no image type has, for the worker to prepare.
        save_files((analysis.received, f"{stem}.upload", data))
    try:
        with transaction.atomic():
            analysis.save()
            if filters.topics:
                analysis.topics.set(filters.topics)
            if filters.creators:
                analysis.creators.set(filters.creators)
            transaction.on_commit(lambda: enqueue_analysis(analysis))
    except Exception:
        for stored in (analysis.image, analysis.thumbnail, analysis.reduced, analysis.received):
            stored.delete(save=False)
        raise
    return analysis


@dataclass(frozen=True)
class StoredCopies:
    """What an analysis stores of its upload: the metadata-free image, a thumbnail and the
    reduced copy the worker's whole-image passes read."""

    image: bytes
    extension: str
    thumbnail: bytes
    reduced: bytes
    width: int
    height: int


def _stored_copies(data: bytes) -> StoredCopies:
    """Decode the upload (a JPEG kept as it came only at the thumbnail's scale) and encode
    its copies. Raises `InvalidImage` for data that only a full decode finds corrupt."""
    clean = validate_image(
        data,
        max_bytes=settings.ANALYSIS_MAX_UPLOAD_BYTES,
        max_pixels=settings.ANALYSIS_MAX_PIXELS,
        # The pixels are needed here for the thumbnail and the reduced copy only.
        preview_size=THUMBNAIL_SIZE,
    )
    return StoredCopies(
        image=clean.content,
        extension=clean.extension,
        thumbnail=_thumbnail(clean.image),
        reduced=_reduced(clean.image),
        width=clean.width,
        height=clean.height,
    )


def _copy_files(analysis: Analysis, stem: str, copies: StoredCopies) -> list:
    return [
        (analysis.image, f"{stem}.{copies.extension}", copies.image),
        (analysis.thumbnail, f"{stem}.jpg", copies.thumbnail),
        (analysis.reduced, f"{stem}.ppm", copies.reduced),
    ]


def prepare_upload(analysis: Analysis) -> bool:
    """The worker's first step for an upload kept as it came: make and store its copies,
    then delete it; False if the analysis was deleted meanwhile. Data found corrupt only now
    raises the sentence the upload would have got, and the file as received goes too; a full
    disk raises `StorageFullError` and keeps it."""
    with analysis.received.open("rb") as received:
        data = received.read()
    try:
        copies = _stored_copies(data)
        if (copies.width, copies.height) != (analysis.width, analysis.height):
            # An orientation the header did not show (a PNG's EXIF after its pixels).
            resolve_crop(analysis.crop, copies.width, copies.height)
    except ApplicationError:
        analysis.received.delete(save=False)
        Analysis.objects.filter(pk=analysis.pk).update(received="")
        raise
    stem = PurePosixPath(analysis.received.name).stem
    save_files(*_copy_files(analysis, stem, copies))
    if not _save_prepared(analysis, copies):
        for stored in (analysis.image, analysis.thumbnail, analysis.reduced, analysis.received):
            stored.delete(save=False)
        return False
    return True


@retry_on_lost_connection
def _save_prepared(analysis: Analysis, copies: StoredCopies) -> bool:
    """Record the stored copies in place of the file as received, then delete that file;
    False if the row is gone."""
    updated = Analysis.objects.filter(pk=analysis.pk).update(
        image=analysis.image.name,
        thumbnail=analysis.thumbnail.name,
        reduced=analysis.reduced.name,
        width=copies.width,
        height=copies.height,
        received="",
    )
    if not updated:
        return False
    analysis.width, analysis.height = copies.width, copies.height
    analysis.received.delete(save=False)
    return True


def _gpu_queue():
    """The model queue, enqueueing at once: analyses are queued from `on_commit` already, and
    heat-map requests answer with their job's id, which django-rq's default (enqueue when the
    surrounding transaction commits) would leave unknown."""
    return django_rq.get_queue(settings.RQ_GPU_QUEUE, commit_mode="auto")


def _new_job_id() -> str:
    return uuid.uuid4().hex


NOT_QUEUED = "The analysis could not be queued: the job queue was unreachable. Try again."


def enqueue_analysis(analysis: Analysis) -> None:
    """Queue the model job under the id the analysis row already holds (written with the row,
    so enqueueing costs no second write)."""
    from apps.analysis import jobs

    try:
        _gpu_queue().enqueue(
            jobs.run_analysis,
            str(analysis.id),
            job_id=analysis.job_id,
            job_timeout=settings.ANALYSIS_JOB_TIMEOUT,
            on_failure=Callback(jobs.analysis_failed),
            meta=job_meta(),
        )
    except redis.RedisError:
        # The row is committed (this runs on commit): rather than leave it queued with no
        # job, say what happened; "Try again" queues it anew once Redis is back.
        logger.warning("Analysis %s could not be queued: Redis is unreachable.", analysis.pk)
        mark_analysis_failed(str(analysis.pk), NOT_QUEUED)


@retry_on_lost_connection
def _set_progress(analysis: Analysis, progress: int, **fields) -> None:
    fields["progress"] = progress
    for name, value in fields.items():
        setattr(analysis, name, value)
    Analysis.objects.filter(pk=analysis.pk).update(**fields)


def _filter_ids(analysis: Analysis) -> tuple[list[str], list[str]]:
    topics = list(analysis.topics.values_list("id", flat=True))
    creators = list(analysis.creators.values_list("slug", flat=True))
    return topics, creators


def _store_results(
    analysis: Analysis,
    query: str,
    hits: list[SentenceHit],
    cell: tuple[int, int] | None = None,
) -> None:
    row, col = cell if cell else (None, None)
    with transaction.atomic(savepoint=False):  # inside the worker's transaction: no savepoint
        AnalysisResult.objects.filter(
            analysis=analysis, query=query, cell_row=row, cell_col=col
        ).delete()
        AnalysisResult.objects.bulk_create(
            AnalysisResult(
                analysis=analysis,
                query=query,
                cell_row=row,
                cell_col=col,
                rank=hit.rank,
                sentence_id=hit.sentence_id,
                score=hit.score,
            )
            for hit in hits
        )


def rank_analysis(
    analysis: Analysis, embedding: AnalysisEmbedding, k: int | None = None
) -> list[SentenceHit]:
    """Search with the stored query vector under the analysis's filters; store the ranking
    (the k best, ANALYSIS_RESULTS unless asked for more)."""
    topics, creators = _filter_ids(analysis)
    hits = search_sentences(
        embedding.query(),
        analysis.model_key,
        k=k or settings.ANALYSIS_RESULTS,
        topics=topics,
        creators=creators,
    )
    _store_results(analysis, analysis.query_kind, hits)
    return hits


def run_analysis(analysis_id: str) -> None:
    """The worker's part: embed the image (and crop) once, store the vectors, rank. Its
    writes are retried while the database connection is lost (`retry_on_lost_connection`):
    a PostgreSQL restart during the model pass costs seconds, not the pass."""
    analysis = retry_on_lost_connection(Analysis.objects.get)(pk=analysis_id)
    timings: dict[str, float] = {}
    _set_progress(analysis, 5, status=Analysis.Status.RUNNING, started_at=timezone.now(), error="")
    if analysis.received:
        try:
            if not prepare_upload(analysis):
                return  # deleted meanwhile
        except StorageFullError as error:  # the upload is kept: "Try again" prepares it
            mark_analysis_failed(analysis_id, f"The analysis failed: {error}")
            return
        except ApplicationError as error:  # the upload is gone: there is nothing to retry
            mark_analysis_failed(analysis_id, f"The upload could not be used: {error}")
            return
    registry = engine.get_registry()
    started = time.perf_counter()
    already_loaded = registry.status()[analysis.model_key]["loaded"]
    model = registry.get(analysis.model_key)
    timings["load_model"] = round(time.perf_counter() - started, 4)
    timings["model_was_loaded"] = already_loaded
    if not already_loaded:
        _set_progress(analysis, 20)

    started = time.perf_counter()
    if analysis.crop:
        # A region is a painting of its own: its vector and its grid come from one pass over
        # the region cut from the upload at full resolution, so the cells subdivide it.
        left, top, right, bottom = analysis.crop
        picture = _read_image(analysis).crop((left, top, right, bottom))
        size, offset = (right - left, bottom - top), (left, top)
    else:
        # The whole image needs no more pixels than the model's input has.
        picture = _model_image(analysis, model.preprocess.shortest_edge)
        size, offset = (analysis.width, analysis.height), (0, 0)
    timings["read_image"] = round(time.perf_counter() - started, 4)

    started = time.perf_counter()
    seen = engine.analyse_image(
        picture,
        analysis.model_key,
        view=settings.ANALYSIS_WHOLE_IMAGE,
        cells=settings.ANALYSIS_CELLS,
        short_cells=settings.ANALYSIS_GRID_SHORT_CELLS,
        registry=registry,
    )
    timings["embed"] = round(time.perf_counter() - started, 4)
    figure_vector = None
    if settings.FIGURE_WHITE_BALANCE != "none":
        # Figure search compares white-balanced pictures (see `apps.corpus.figures`): one
        # more whole-image pass, of the picture the query vector came from.
        started = time.perf_counter()
        figure_vector = engine.embed_images(
            [white_balanced(picture, settings.FIGURE_WHITE_BALANCE)],
            analysis.model_key,
            view=settings.ANALYSIS_WHOLE_IMAGE,
            short_cells=settings.ANALYSIS_GRID_SHORT_CELLS,
            registry=registry,
        )[0]  # [D], unit length
        timings["embed_figure"] = round(time.perf_counter() - started, 4)
    _set_progress(analysis, 70)

    rows, cols, dim = seen.cells.shape
    embedding = AnalysisEmbedding(
        analysis=analysis,
        model_key=analysis.model_key,
        dim=dim,
        grid_rows=rows,
        grid_cols=cols,
        query_vector=np.ascontiguousarray(seen.embedding, dtype=np.float32).tobytes(),
        cell_vectors=np.ascontiguousarray(seen.cells, dtype=np.float32).tobytes(),
        figure_vector=None if figure_vector is None else figure_vector.tobytes(),
        view_box=_in_image(seen.view_box, picture.size, size, offset),
        cell_boxes=[
            [_in_image(box, picture.size, size, offset) for box in boxes]
            for boxes in seen.cell_boxes
        ],
    )
    _commit_analysis(analysis, embedding, timings)


@retry_on_lost_connection
def _commit_analysis(
    analysis: Analysis, embedding: AnalysisEmbedding, timings: dict[str, float]
) -> None:
    """Store the vectors, the ranking and the status `done`, together: whoever sees `done`
    sees the results, and a worker that dies in between leaves none of them (one commit, not
    four); a connection lost before the commit repeats the whole transaction."""
    with transaction.atomic():
        # The row locked first: a cancel or a deletion that came meanwhile is seen here, and
        # one that comes now waits for this commit instead of racing the inserts below.
        current = Analysis.objects.select_for_update().filter(pk=analysis.pk).first()
        if current is None or current.status != Analysis.Status.RUNNING:
            logger.info("Analysis %s was cancelled or deleted while it ran.", analysis.pk)
            return
        # One INSERT ... ON CONFLICT (a job run again for the same model replaces the vectors).
        AnalysisEmbedding.objects.bulk_create(
            [embedding],
            update_conflicts=True,
            unique_fields=["analysis", "model_key"],
            update_fields=[
                "dim",
                "grid_rows",
                "grid_cols",
                "query_vector",
                "cell_vectors",
                "view_box",
                "cell_boxes",
            ],
        )
        started = time.perf_counter()
        rank_analysis(analysis, embedding)
        timings["search"] = round(time.perf_counter() - started, 4)
        _set_progress(
            analysis,
            100,
            status=Analysis.Status.DONE,
            finished_at=timezone.now(),
            timings=timings,
        )


def _in_image(
    box: Sequence[float],
    picture_size: tuple[int, int],
    size: tuple[int, int],
    offset: tuple[int, int],
) -> list[float]:
    """A box of the picture a model pass saw (`picture_size`: the reduced copy, or a region
    at full resolution) in pixels of the whole upload: scaled to the `size` the picture stands
    for and moved by `offset` (a region's picture starts at its crop's top-left corner), to a
    tenth of a pixel. Boxes that tile the picture tile what it stands for."""
    left, top, right, bottom = box
    sx, sy = size[0] / picture_size[0], size[1] / picture_size[1]
    dx, dy = offset
    return [
        round(float(value), 1)
        for value in (left * sx + dx, top * sy + dy, right * sx + dx, bottom * sy + dy)
    ]


def create_analysis_from_upload(
    *,
    owner,
    upload=None,
    example=None,
    model_key: str,
    topic_ids: Sequence[str] = (),
    creator_ids: Sequence[str] = (),
) -> Analysis:
    """The workspace's upload: a file from the researcher's machine, or an example painting."""
    if upload is not None:
        data, filename = upload.read(), upload.name or ""
    else:
        with example.image.open("rb") as stored:
            data = stored.read()
        filename = example.title + Path(example.image.name).suffix
    return create_analysis(
        owner=owner,
        data=data,
        filename=filename,
        model_key=model_key,
        topic_ids=topic_ids,
        creator_ids=creator_ids,
    )


def create_analysis_from_iiif(
    *,
    owner,
    url: str,
    canvas_id: str = "",
    model_key: str,
    crop: Sequence[float] | None = None,
    topic_ids: Sequence[str] = (),
    creator_ids: Sequence[str] = (),
) -> Analysis:
    """An analysis of a painting on a IIIF server: the image is fetched safely at the size
    the analysis needs (`apps.iiif.sources`), checked and stored as an upload is, and its
    source and terms are kept with it. The quotas are checked before anything is fetched."""
    from apps.iiif import sources

    check_upload_quota(owner)
    source = sources.read_source(url, canvas_id)
    data = sources.fetch_image(source)
    with transaction.atomic():
        analysis = create_analysis(
            owner=owner,
            data=data,
            filename=source.filename,
            model_key=model_key,
            crop=crop,
            topic_ids=topic_ids,
            creator_ids=creator_ids,
        )
        IiifSource.objects.create(
            analysis=analysis,
            manifest_url=source.manifest_url,
            canvas_id=source.canvas_id,
            service_id=source.service_id,
            image_url=source.image_url,
            label=source.label,
            canvas_label=source.canvas_label,
            attribution=source.attribution,
            attribution_label=source.attribution_label[:200],
            rights=source.rights,
        )
    return analysis


def set_example_picture(example: ExampleImage, data: bytes) -> None:
    """Check `data` like an upload and give it to `example` as its picture (a metadata-free
    copy and a gallery thumbnail); the caller saves the row. Raises `InvalidImage`."""
    clean = validate_image(
        data,
        max_bytes=settings.ANALYSIS_MAX_UPLOAD_BYTES,
        max_pixels=settings.ANALYSIS_MAX_PIXELS,
        preview_size=THUMBNAIL_SIZE,
    )
    stem = uuid.uuid4().hex
    example.width, example.height = clean.width, clean.height
    save_files(
        (example.image, f"{stem}.{clean.extension}", clean.content),
        (example.thumbnail, f"{stem}.jpg", _thumbnail(clean.image)),
    )


def create_example_image(
    *, title: str, data: bytes, artist: str = "", credit: str = "", position: int | None = None
) -> ExampleImage:
    """Add a painting to the workspace's example gallery (last, unless `position` says)."""
    if position is None:
        last = ExampleImage.objects.aggregate(last=Max("position"))["last"]
        position = 0 if last is None else last + 1
    example = ExampleImage(title=title, artist=artist, credit=credit, position=position)
    set_example_picture(example, data)
    try:
        example.save()
    except Exception:
        example.image.delete(save=False)
        example.thumbnail.delete(save=False)
        raise
    return example


def create_region_analysis(analysis: Analysis, crop: Sequence[float]) -> Analysis:
    """'Analyse region': the same image, model and filters with a crop, as a new analysis
    whose parent is `analysis` (undo leads back to it, with its own results)."""
    source = analysis.parent if analysis.crop and analysis.parent else analysis
    if not source.prepared:
        raise ApplicationError(
            "analysis_not_ready",
            "The painting is still being prepared; choose a region once it is shown.",
            status=409,
        )
    with source.image.open("rb") as stored:
        data = stored.read()
    topics, creators = _filter_ids(analysis)
    return create_analysis(
        owner=analysis.owner,
        data=data,
        filename=source.original_filename,
        model_key=analysis.model_key,
        crop=crop,
        topic_ids=topics,
        creator_ids=creators,
        parent=source,
    )


def cancel_analysis(analysis: Analysis) -> None:
    """Stop a queued or running analysis: a waiting job is taken off the queue, a running one
    finds the analysis cancelled when it would store its results, and stores nothing."""
    if analysis.status not in (Analysis.Status.QUEUED, Analysis.Status.RUNNING):
        return
    Analysis.objects.filter(pk=analysis.pk).update(
        status=Analysis.Status.FAILED, error="Cancelled.", finished_at=timezone.now()
    )
    if analysis.job_id:
        transaction.on_commit(lambda: _cancel_waiting_job(analysis.job_id), robust=True)


def retry_analysis(analysis: Analysis) -> None:
    """Queue a failed (or stalled) analysis again under a new job id."""
    if analysis.status == Analysis.Status.DONE:
        raise ApplicationError("analysis_done", "The analysis has finished; nothing to retry.")
    _check_usable(analysis)
    _set_progress(
        analysis, 0, status=Analysis.Status.QUEUED, error="", finished_at=None, job_id=_new_job_id()
    )
    transaction.on_commit(lambda: enqueue_analysis(analysis))


def _check_usable(analysis: Analysis) -> None:
    """Refuse to run again an analysis whose upload the worker found unusable when it
    prepared it: neither copies nor the file as received are left."""
    if not analysis.prepared and not analysis.received:
        raise ApplicationError(
            "upload_unusable",
            "The uploaded file could not be used, so there is nothing to analyse again; "
            "upload another file.",
            status=409,
        )


def rank_for_view(analysis: Analysis, *, cell: tuple[int, int] | None, k: int) -> list[SentenceHit]:
    """The hits the analysis page shows: a cell's (ranked from its stored vector), or the
    whole image's or crop's, ranked again when more are asked for than are stored."""
    if cell is not None:
        return rank_cell(analysis, cell[0], cell[1], k)
    stored = list(selectors.list_results(analysis, analysis.query_kind))
    if len(stored) >= k or len(stored) < settings.ANALYSIS_RESULTS:
        return [
            SentenceHit(
                sentence_id=result.sentence_id,
                work_id=result.sentence.work_id,
                score=result.score,
                rank=result.rank,
                text=result.sentence.text,
            )
            for result in stored[:k]
        ]
    embedding = selectors.get_embedding(analysis)
    if embedding is None:
        raise ApplicationError(
            "analysis_not_ready", "The analysis has not finished yet; try again soon."
        )
    return rank_analysis(analysis, embedding, k)


def delete_analysis(analysis: Analysis) -> None:
    """Delete an analysis with its vectors, rankings and heat maps; its files follow once the
    deletion commits (see `apps.analysis.models`), so a rolled-back deletion keeps them.

    Its job, if still waiting in the queue, is cancelled after the commit. A job already
    running finds the row gone and ends without an error (`apps.analysis.jobs`), as does a
    waiting one whose cancelling failed (logged, not raised: the deletion has happened).

    The row is locked first: a job storing its results holds that lock until it commits, and
    what to delete is decided only after, so nothing the job stored is left behind."""
    job_id = analysis.job_id
    with transaction.atomic():
        list(Analysis.objects.select_for_update().filter(pk=analysis.pk).values_list("pk"))
        analysis.delete()
    if job_id:
        transaction.on_commit(lambda: _cancel_waiting_job(job_id), robust=True)


def _cancel_waiting_job(job_id: str) -> None:
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        job = Job.fetch(job_id, connection=_gpu_queue().connection)
        if job.get_status() in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
            job.cancel()
    except (NoSuchJobError, InvalidJobOperation):  # expired, or ended meanwhile
        pass


@retry_on_lost_connection
def mark_analysis_failed(analysis_id: str, message: str) -> None:
    """Record a failure; the message is shown to its researcher, so without server paths (the
    worker's log keeps the whole traceback)."""
    Analysis.objects.filter(pk=analysis_id).exclude(status=Analysis.Status.DONE).update(
        status=Analysis.Status.FAILED,
        error=without_server_paths(message)[:2000],
        finished_at=timezone.now(),
    )


@transaction.atomic
def rerun_analysis(
    analysis: Analysis,
    *,
    model_key: str,
    topic_ids: Sequence[str],
    creator_ids: Sequence[str],
) -> bool:
    """Switch model or filters. Returns True if it re-ranked at once (the model's vectors are
    stored already), False if it queued the model job for a model not yet run."""
    if analysis.status in (Analysis.Status.QUEUED, Analysis.Status.RUNNING):
        raise ApplicationError(
            "analysis_busy", "The analysis is still running; change it once it has finished."
        )
    _check_usable(analysis)
    filters = resolve_filters(model_key, topic_ids, creator_ids)
    analysis.model_key = filters.model_key
    analysis.save(update_fields=["model_key"])
    analysis.topics.set(filters.topics)
    analysis.creators.set(filters.creators)
    AnalysisResult.objects.filter(analysis=analysis, query=ResultQuery.CELL).delete()
    embedding = analysis.embeddings.filter(model_key=filters.model_key).first()
    if embedding is not None:
        rank_analysis(analysis, embedding)
        return True
    _set_progress(
        analysis,
        0,
        status=Analysis.Status.QUEUED,
        error="",
        finished_at=None,
        job_id=_new_job_id(),
    )
    transaction.on_commit(lambda: enqueue_analysis(analysis))
    return False


def rank_cell(analysis: Analysis, row: int, col: int, k: int) -> list[SentenceHit]:
    """Rank sentences for one grid cell from its stored vector: no model, no queue."""
    embedding = selectors.get_embedding(analysis)
    if embedding is None:
        raise ApplicationError(
            "analysis_not_ready", "The analysis has not finished yet; try the cell again soon."
        )
    if not (0 <= row < embedding.grid_rows and 0 <= col < embedding.grid_cols):
        raise ApplicationError(
            "bad_cell",
            f"The grid is {embedding.grid_rows} × {embedding.grid_cols}; "
            f"cell ({row}, {col}) is outside it.",
        )
    topics, creators = _filter_ids(analysis)
    hits = search_sentences(
        embedding.cell(row, col), analysis.model_key, k=k, topics=topics, creators=creators
    )
    _store_results(analysis, ResultQuery.CELL, hits, cell=(row, col))
    return hits


def request_heatmaps(analysis: Analysis, sentence_ids: Sequence[str]) -> str:
    """Queue one Grad-ECLIP pass for up to ANALYSIS_MAX_HEATMAPS sentences; return the job id."""
    from apps.analysis import jobs

    limit = settings.ANALYSIS_MAX_HEATMAPS
    unique = list(dict.fromkeys(sentence_ids))
    if not unique or len(unique) > limit:
        raise ApplicationError(
            "bad_sentences", f"Ask for heatmaps of 1 to {limit} sentences at a time."
        )
    found = set(
        Sentence.objects.filter(id__in=unique, published=True, work__published=True).values_list(
            "id", flat=True
        )
    )
    missing = [sentence_id for sentence_id in unique if sentence_id not in found]
    if missing:
        raise ApplicationError("unknown_sentence", f"There is no sentence {missing[0]!r}.")
    job = _gpu_queue().enqueue(
        jobs.run_heatmaps,
        str(analysis.id),
        analysis.model_key,
        unique,
        job_timeout=settings.ANALYSIS_JOB_TIMEOUT,
        meta=job_meta(),
    )
    return job.id


def compute_heatmaps(analysis_id: str, model_key: str, sentence_ids: Sequence[str]) -> int:
    """The worker's part: one forward and one backward pass for all the sentences.

    The sentences' stored embeddings stand in for their text when every one has a vector of
    the model's size: that skips the text encoder, which costs more than the vision side for
    a handful of sentences.
    """
    analysis = Analysis.objects.get(pk=analysis_id)
    texts = dict(Sentence.objects.filter(id__in=sentence_ids).values_list("id", "text"))
    ordered = [sentence_id for sentence_id in sentence_ids if sentence_id in texts]
    registry = engine.get_registry()
    model = registry.get(model_key)
    vectors = get_stored_embeddings(model_key, ordered)
    if len(vectors) == len(ordered) and all(len(v) == model.embed_dim for v in vectors.values()):
        queries: list[str] | np.ndarray = np.stack([vectors[s] for s in ordered])
    else:
        queries = [texts[sentence_id] for sentence_id in ordered]
    maps = engine.gradeclip_maps(
        _heatmap_image(analysis, model), queries, model_key, keep_aspect=True, registry=registry
    )
    for sentence_id, heat in zip(ordered, maps, strict=True):
        Heatmap.objects.update_or_create(
            analysis=analysis,
            sentence_id=sentence_id,
            model_key=model_key,
            defaults=_heatmap_fields(heat),
        )
    return len(ordered)


def text_digest(text: str) -> str:
    """The id of a free-text heat map in URLs: the same words give the same map."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:32]


def request_text_heatmap(analysis: Analysis, text: str) -> tuple[str, str | None]:
    """'Where is …?': queue a Grad-ECLIP map of any text over the image; returns the map's
    digest (its id) and the job id, or no job when the map of these words is already stored
    (asking again costs no model pass). The engine explains text that no sentence holds,
    too."""
    from apps.analysis import jobs

    phrase = text.strip()
    if not 0 < len(phrase) <= Heatmap.MAX_TEXT_CHARS:
        raise ApplicationError(
            "bad_text", f"Give 1 to {Heatmap.MAX_TEXT_CHARS} characters to look for."
        )
    if analysis.status != Analysis.Status.DONE:
        raise ApplicationError(
            "analysis_not_ready", "The analysis has not finished yet; try again soon."
        )
    digest = text_digest(phrase)
    if Heatmap.objects.filter(
        analysis=analysis, model_key=analysis.model_key, text_digest=digest, sentence=None
    ).exists():
        return digest, None
    job = _gpu_queue().enqueue(
        jobs.run_text_heatmap,
        str(analysis.id),
        analysis.model_key,
        phrase,
        job_timeout=settings.ANALYSIS_JOB_TIMEOUT,
        meta=job_meta(),
    )
    return digest, job.id


def compute_text_heatmap(analysis_id: str, model_key: str, text: str) -> None:
    """The worker's part of `request_text_heatmap`: the text through the text tower, then one
    Grad-ECLIP pass."""
    analysis = Analysis.objects.get(pk=analysis_id)
    registry = engine.get_registry()
    model = registry.get(model_key)
    (heat,) = engine.gradeclip_maps(
        _heatmap_image(analysis, model), [text], model_key, keep_aspect=True, registry=registry
    )
    Heatmap.objects.update_or_create(
        analysis=analysis,
        model_key=model_key,
        text_digest=text_digest(text),
        defaults={"sentence": None, "text": text, **_heatmap_fields(heat)},
    )


def _heatmap_image(analysis: Analysis, model) -> Image.Image:
    """What a heat map explains: the crop region at full resolution, or the whole image."""
    if analysis.crop:
        return _read_image(analysis).crop(tuple(analysis.crop))
    preprocess = model.preprocess
    return _model_image(analysis, min(preprocess.crop_height, preprocess.crop_width))


def _heatmap_fields(heat: np.ndarray) -> dict:
    """A map's values, with any cached overlay of an earlier map dropped."""
    return {
        "rows": heat.shape[0],
        "cols": heat.shape[1],
        "values": np.ascontiguousarray(heat, dtype=np.float32).tobytes(),
        "overlay": "",
        "display_overlay": "",
        "display_side": None,
    }


def _read_image(analysis: Analysis, min_short_side: int | None = None) -> Image.Image:
    """The stored upload as RGB; with `min_short_side`, decoded no larger than that needs
    (see `engine.load_image`)."""
    with analysis.image.open("rb") as stored:
        data = stored.read()
    return engine.load_image(data, min_short_side=min_short_side)


def _model_image(analysis: Analysis, min_short_side: int) -> Image.Image:
    """The whole image as RGB for a model pass that needs `min_short_side` px: the stored
    reduced copy when it has them (or is the image at full size), else the upload decoded no
    larger than that (analyses from before the copy existed, models with larger inputs, a
    copy removed from storage: the upload still holds every pixel)."""
    try:
        with analysis.reduced.open("rb") as stored:
            reduced = engine.load_image(stored.read())
    except (ValueError, FileNotFoundError):  # no copy recorded, or its file is gone
        reduced = None
    needed = min(min_short_side, analysis.width, analysis.height)
    if reduced is not None and min(reduced.size) >= needed:
        return reduced
    return _read_image(analysis, min_short_side)


def render_heatmap_png(heatmap: Heatmap, max_side: int | None = None) -> bytes:
    """The map over the analysed image (or crop region) as a PNG, cached: at the image's own
    size, or with `max_side` no larger than that many pixels on its long side (what a browser
    should get: an 11-megapixel overlay is 16 MB)."""
    analysis = heatmap.analysis
    width, height = analysis.width, analysis.height
    scale = 1.0 if max_side is None else min(1.0, max_side / max(width, height))
    field = heatmap.overlay if scale == 1.0 else heatmap.display_overlay
    if field and (scale == 1.0 or heatmap.display_side == max_side):
        with field.open("rb") as cached:
            return cached.read()
    from apps.engine.overlay import render_overlay

    if scale == 1.0:
        image = _read_image(analysis)
    else:
        short = math.ceil(min(width, height) * scale)
        image = _read_image(analysis, min_short_side=short)
        image = image.resize((max(1, round(width * scale)), max(1, round(height * scale))))
    box = tuple(v * scale for v in analysis.crop) if analysis.crop else None
    png = render_overlay(image, heatmap.array(), box=box)
    try:
        _cache_overlay(heatmap, png, max_side=None if scale == 1.0 else max_side)
    except StorageFullError:
        # A cache: the overlay is drawn again next time, when there may be room.
        logger.warning("No room to keep heat map %s's overlay; it was sent uncached.", heatmap.pk)
    return png


def _cache_overlay(heatmap: Heatmap, png: bytes, *, max_side: int | None) -> None:
    name = f"{uuid.uuid4().hex}.png"
    if max_side is None:
        save_files((heatmap.overlay, name, png))
        heatmap.save(update_fields=["overlay"])
    else:
        save_files((heatmap.display_overlay, name, png))
        heatmap.display_side = max_side
        heatmap.save(update_fields=["display_overlay", "display_side"])


def search_text(
    query: str,
    *,
    model_key: str,
    topic_ids: Sequence[str] = (),
    creator_ids: Sequence[str] = (),
    k: int = 25,
) -> list[SentenceHit]:
    """Sentences nearest to a text query under the model's text tower."""
    text = query.strip()
    if not text:
        raise ApplicationError("empty_query", "Give some words to search for (q=…).")
    resolve_filters(model_key, topic_ids, creator_ids)
    return search_sentences(
        embed_query(text, model_key),
        model_key,
        k=k,
        topics=list(topic_ids),
        creators=list(creator_ids),
    )


def embed_query(text: str, model_key: str) -> np.ndarray:
    """The text tower's vector for `text`, embedded by a model worker and cached for every web
    process: the same text under the same model weights is embedded once."""
    key = _query_cache_key(text, model_key)
    cached = cache.get(key)
    if cached is not None:
        return np.frombuffer(cached, dtype=np.float32)
    vector = _embed_on_worker(text, model_key)
    cache.set(key, vector.tobytes(), settings.ANALYSIS_QUERY_CACHE_SECONDS)
    return vector


def _query_cache_key(text: str, model_key: str) -> str:
    spec = next(spec for spec in engine_config().specs if spec.key == model_key)
    source = "\0".join((model_key, spec.base, spec.adapter or "", text))
    return "query-vector:" + hashlib.sha256(source.encode()).hexdigest()


def _embed_on_worker(text: str, model_key: str) -> np.ndarray:
    """Ask the model workers for the vector and wait for it, at most
    ANALYSIS_TEXT_QUERY_TIMEOUT seconds. The job goes to the priority queue, which workers
    take before analyses, and expires unstarted once nobody waits for it any more."""
    from rq import Worker
    from rq.results import Result

    from apps.analysis import jobs
    from apps.analysis.worker import starting_workers

    timeout = settings.ANALYSIS_TEXT_QUERY_TIMEOUT
    # Enqueued at once even inside a transaction: the request waits for the answer.
    queue = django_rq.get_queue(
        settings.RQ_PRIORITY_QUEUE,
        commit_mode="auto",
        connection=_waiting_connection(settings.REDIS_URL, timeout),
    )
    if not Worker.all(queue=queue):
        if starting_workers(queue.connection):
            raise ServiceUnavailableError(
                "busy", "The model workers are still starting; try again in a moment."
            )
        raise ServiceUnavailableError(
            "model_unavailable",
            "No model worker is running, so the text cannot be embedded; try again later.",
        )
    job = queue.enqueue(
        jobs.embed_text_query,
        model_key,
        text,
        ttl=timeout,
        result_ttl=60,
        failure_ttl=300,
        meta=job_meta(),
    )
    result = job.latest_result(timeout=timeout)
    if result is None:
        raise ServiceUnavailableError(
            "busy", f"The model workers did not answer within {timeout} s; try again in a moment."
        )
    if result.type != Result.Type.SUCCESSFUL:
        raise ServiceUnavailableError(
            "model_unavailable", "The model worker failed to embed the text; try again later."
        )
    answer = result.return_value
    if "error" in answer:
        raise ServiceUnavailableError(answer["error"], answer["detail"])
    return np.frombuffer(answer["vector"], dtype=np.float32)


@functools.cache
def _waiting_connection(url: str, timeout: int) -> redis.Redis:
    """A Redis client whose reads outlast the blocking wait for a result (redis-py's default
    socket timeout, 5 s, would end a longer wait with an error)."""
    return redis.Redis.from_url(url, socket_timeout=timeout + 5)


def compute_query_vector(text: str, model_key: str) -> bytes:
    """The worker's part of `embed_query`: the unit vector as float32 bytes."""
    try:
        vector = engine.embed_texts([text], model_key)[0]
    except engine.ModelLoadError as error:
        raise ServiceUnavailableError(
            "model_unavailable", without_server_paths(str(error))
        ) from None
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()
