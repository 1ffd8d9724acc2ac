"""Analyses: an uploaded painting, the region and model asked about, and what was found.

The image is stored once per analysis; its embeddings are stored per model key (whole image or
crop, plus the cells of the grid), so that switching model reuses the image, changing filters
re-ranks without a model call, and a cell click is a database search alone.

An analysis's files (upload, thumbnail, reduced copy, an upload still to be prepared) and its
heat maps' overlays go with their rows: django-cleanup deletes them once the deletion commits,
and deletes an overlay replaced by a recomputed map. It runs in select mode (`cleanup.select`),
because the corpus importer rewrites its figure files under the same names after deleting their
rows.
"""

from __future__ import annotations

import uuid

import numpy as np
from django.conf import settings
from django.db import models
from django_cleanup import cleanup


@cleanup.select
class Analysis(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="analyses"
    )
    image = models.ImageField(upload_to="analyses/%Y/%m/", max_length=300, blank=True)
    thumbnail = models.ImageField(
        upload_to="analyses/thumbnails/%Y/%m/", max_length=300, blank=True
    )
    received = models.FileField(
        upload_to="analyses/received/%Y/%m/",
        max_length=300,
        blank=True,
        help_text="A large upload as it came, until the worker has made its copies; never "
        "served (see ANALYSIS_REQUEST_DECODE_PIXELS).",
    )
    reduced = models.ImageField(
        upload_to="analyses/reduced/%Y/%m/",
        max_length=300,
        blank=True,
        help_text="The upright image reduced to about ANALYSIS_REDUCED_SIDE px on its short "
        "side, uncompressed (PPM): what whole-image model passes read.",
    )
    original_filename = models.CharField(max_length=255, blank=True)
    file_size = models.PositiveBigIntegerField(help_text="Bytes of the upload as received.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Optional region in original-image pixels: left, top, right, bottom.
    crop = models.JSONField(null=True, blank=True)
    model_key = models.CharField(max_length=32)
    topics = models.ManyToManyField("corpus.Topic", blank=True, related_name="+")
    creators = models.ManyToManyField("corpus.Creator", blank=True, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per stage.")
    job_id = models.CharField(max_length=64, blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="regions",
        help_text="The analysis this region was cut from (undo leads back).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="analysis_owner_recent")]
        verbose_name_plural = "analyses"

    def __str__(self) -> str:
        return f"{self.original_filename or self.id} ({self.model_key}, {self.status})"

    @property
    def query_kind(self) -> str:
        return ResultQuery.CROP if self.crop else ResultQuery.IMAGE

    @property
    def prepared(self) -> bool:
        """Whether the stored copies exist: false while a large upload waits for the worker
        to make them from the file as received."""
        return bool(self.image)


class AnalysisEmbedding(models.Model):
    """What the model saw, once per model key: the query vector and the grid's cell vectors.

    Vectors are float32 bytes rather than pgvector columns: they are read whole by primary
    key and passed to the search, never searched themselves.
    """

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="embeddings")
    model_key = models.CharField(max_length=32)
    dim = models.PositiveIntegerField()
    grid_rows = models.PositiveSmallIntegerField()
    grid_cols = models.PositiveSmallIntegerField()
    query_vector = models.BinaryField(help_text="Whole image, or the crop when there is one.")
    cell_vectors = models.BinaryField(help_text="rows × cols × dim float32, row-major.")
    figure_vector = models.BinaryField(
        null=True,
        help_text="What figure search compares with the plates: the image (or crop) "
        "white-balanced by FIGURE_WHITE_BALANCE; empty when it is the query vector.",
    )
    view_box = models.JSONField(
        null=True, help_text="left, top, right, bottom in image pixels: what the model saw."
    )
    cell_boxes = models.JSONField(
        null=True, help_text="rows × cols boxes (left, top, right, bottom) in image pixels."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["analysis", "model_key"], name="embedding_per_model")
        ]

    def __str__(self) -> str:
        return f"{self.analysis_id}:{self.model_key}"

    def query(self) -> np.ndarray:
        return np.frombuffer(bytes(self.query_vector), dtype=np.float32)

    def figure_query(self) -> np.ndarray:
        """The vector figure search ranks plates by: the white-balanced image's, or the query
        vector where none was stored (no balance, or an analysis from before there was)."""
        if self.figure_vector is None:
            return self.query()
        return np.frombuffer(bytes(self.figure_vector), dtype=np.float32)

    def grid(self) -> dict | None:
        """The grid as a client draws it, or None for vectors stored before geometry was."""
        if self.cell_boxes is None:
            return None
        return {
            "rows": self.grid_rows,
            "cols": self.grid_cols,
            "view_box": self.view_box,
            "cells": self.cell_boxes,
        }

    def cell(self, row: int, col: int) -> np.ndarray:
        cells = np.frombuffer(bytes(self.cell_vectors), dtype=np.float32)
        return cells.reshape(self.grid_rows, self.grid_cols, self.dim)[row, col]


class ResultQuery(models.TextChoices):
    IMAGE = "image"
    CROP = "crop"
    CELL = "cell"


class AnalysisResult(models.Model):
    """One ranked sentence for one query of an analysis (the last ranking is kept)."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="results")
    query = models.CharField(max_length=8, choices=ResultQuery.choices)
    cell_row = models.PositiveSmallIntegerField(null=True, blank=True)
    cell_col = models.PositiveSmallIntegerField(null=True, blank=True)
    rank = models.PositiveSmallIntegerField()
    sentence = models.ForeignKey("corpus.Sentence", on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()

    class Meta:
        ordering = ["analysis", "query", "cell_row", "cell_col", "rank"]
        indexes = [
            models.Index(fields=["analysis", "query", "cell_row", "cell_col", "rank"]),
        ]

    def __str__(self) -> str:
        return f"{self.analysis_id} {self.query} #{self.rank}: {self.sentence_id}"


@cleanup.select
class Heatmap(models.Model):
    """A Grad-ECLIP map over the analysed image, under one model key: of a sentence of the
    corpus, or of a free text ('Where is …?', `text` with its `text_digest`)."""

    MAX_TEXT_CHARS = 300  # a phrase to look for, not a paragraph

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="heatmaps")
    sentence = models.ForeignKey(
        "corpus.Sentence", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    text = models.TextField(blank=True, help_text="The free text explained, when no sentence.")
    text_digest = models.CharField(max_length=32, blank=True)
    model_key = models.CharField(max_length=32)
    rows = models.PositiveSmallIntegerField()
    cols = models.PositiveSmallIntegerField()
    values = models.BinaryField(help_text="rows × cols float32 in [0, 1], row-major.")
    overlay = models.ImageField(upload_to="heatmaps/%Y/%m/", blank=True, max_length=300)
    display_overlay = models.ImageField(
        upload_to="heatmaps/display/%Y/%m/",
        blank=True,
        max_length=300,
        help_text="The overlay at `display_side` px on its long side, cached.",
    )
    display_side = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["analysis", "sentence", "model_key"], name="heatmap_per_sentence"
            ),
            models.UniqueConstraint(
                fields=["analysis", "text_digest", "model_key"],
                condition=models.Q(sentence__isnull=True),
                name="heatmap_per_text",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.analysis_id}:{self.sentence_id or self.text} ({self.model_key})"

    def array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.values), dtype=np.float32).reshape(self.rows, self.cols)


@cleanup.select
class ExampleImage(models.Model):
    """A painting of the workspace's example gallery, analysed with one click. Curated in the
    admin; the embedded default's `load_demo` fills it with held-out demo scenes. The image
    is stored as a metadata-free copy with a thumbnail for the gallery, like an upload."""

    position = models.PositiveSmallIntegerField(
        unique=True, help_text="Order in the gallery (smallest first)."
    )
    title = models.CharField(max_length=300)
    artist = models.CharField(max_length=200, blank=True)
    credit = models.CharField(
        max_length=300, blank=True, help_text="Source and licence, shown under the image."
    )
    image = models.ImageField(upload_to="examples/", max_length=300)
    thumbnail = models.ImageField(upload_to="examples/thumbnails/", max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.title


class IiifSource(models.Model):
    """Where an analysis's image came from when it was fetched from a IIIF server, and the
    terms it came under: shown on the analysis page and carried into the manifests we serve,
    as the source's licence asks. Text is plain (markup removed when it was read)."""

    analysis = models.OneToOneField(Analysis, on_delete=models.CASCADE, related_name="iiif_source")
    manifest_url = models.URLField(max_length=2000, blank=True)
    canvas_id = models.CharField(max_length=2000, blank=True)
    service_id = models.URLField(max_length=2000, blank=True, help_text="The Image API service.")
    image_url = models.URLField(max_length=2000, help_text="The image request that was fetched.")
    label = models.CharField(max_length=2000, blank=True, help_text="The manifest's label.")
    canvas_label = models.CharField(max_length=2000, blank=True)
    attribution = models.TextField(blank=True, help_text="Required statement or attribution.")
    attribution_label = models.CharField(max_length=200, blank=True, default="Attribution")
    rights = models.URLField(max_length=2000, blank=True, help_text="Rights or licence URL.")
    fetched_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.analysis_id} ← {self.manifest_url or self.service_id or self.image_url}"
