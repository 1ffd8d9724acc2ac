"""The corpus: scholarly works, their sentences and paragraphs, and sentence embeddings.

Rows are keyed by the ids of the ArteFact datasets (``W…`` works, ``W…_s0001`` sentences,
creator slugs, OpenAlex topic ids), so that an import can be repeated and an export reproduces
the dataset's files. Writes go through :mod:`apps.corpus.services`; the ``published`` flags of
works and sentences are mirrored onto :class:`SentenceEmbedding.searchable` there, so that
search never joins back to works or sentences.
"""

from __future__ import annotations

import html
import re

from django.db import models
from pgvector.django import HalfVectorField

_TAG = re.compile(r"<[^>]+>")


def display_name_from_slug(slug: str) -> str:
    """``arthur_hughes`` → ``Arthur Hughes``: a starting point that curators may edit."""
    return " ".join(part.capitalize() for part in re.split(r"[_\-\s]+", slug) if part)


class Creator(models.Model):
    """An artist whose name the works were found by (a key of creators.json)."""

    slug = models.CharField(primary_key=True, max_length=200)
    name = models.CharField(max_length=200, help_text="Display name; derived from the slug.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Topic(models.Model):
    """An OpenAlex concept or topic id; only the ones shown in the filter UI have a name."""

    id = models.CharField(primary_key=True, max_length=32)
    # NULL, not "": the dataset tells named topics (topic_names.json) from unnamed ones.
    name = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})" if self.name else self.id


class Work(models.Model):
    """A scholarly work (an OpenAlex ``W…`` id) with the metadata of works.json."""

    id = models.CharField(primary_key=True, max_length=32)
    title = models.TextField(help_text="As in the source; may hold HTML such as <i>…</i>.")
    author = models.TextField(blank=True)
    year = models.CharField(max_length=16, blank=True)
    doi = models.TextField(blank=True)
    link = models.TextField(blank=True, help_text="Link to the work's PDF.")
    bibtex = models.TextField(blank=True)
    relevance = models.FloatField(null=True, blank=True)
    artist = models.CharField(
        max_length=200, blank=True, help_text="The creator slug of works.json's Artist field."
    )
    image_ids = models.JSONField(default=list, blank=True)
    source_sentence_count = models.IntegerField(
        default=0, help_text="Number of Sentences as the source dataset states it."
    )
    creators = models.ManyToManyField(Creator, related_name="works", blank=True)
    topics = models.ManyToManyField(Topic, related_name="works", blank=True)
    published = models.BooleanField(default=True, db_index=True)
    markdown = models.TextField(blank=True, help_text="The source Markdown, kept for export.")
    text_digest = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="Digest of the text last imported; a re-run skips equal works.",
    )
    published_sentence_count = models.IntegerField(
        default=0, editable=False, help_text="Kept by the services; the search's filter estimate."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.id}: {self.display_title}"

    @property
    def display_title(self) -> str:
        """The title without HTML markup, for places that show plain text."""
        return html.unescape(_TAG.sub("", self.title)).strip()

    @property
    def doi_url(self) -> str:
        """The DOI as a resolver link ("" without one). Only a bare DOI or a doi.org link is
        taken: the field comes from harvested data, and a link is put in pages."""
        doi = self.doi.strip()
        for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:"):
            if doi.lower().startswith(prefix):
                doi = doi[len(prefix) :]
        return f"https://doi.org/{doi}" if doi.startswith("10.") else ""

    @property
    def link_url(self) -> str:
        """The link to the work's PDF or page when it is an http(s) address, else ""."""
        link = self.link.strip()
        return link if link.lower().startswith(("https://", "http://")) else ""


class Paragraph(models.Model):
    """A paragraph of a work's Markdown, stripped to plain text: a sentence's context."""

    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="paragraphs")
    position = models.IntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["work_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["work", "position"], name="paragraph_work_position")
        ]

    def __str__(self) -> str:
        return f"{self.work_id} ¶{self.position}"


class Sentence(models.Model):
    """One sentence of a work, ``W…_s0001`` numbered in document order from 1."""

    id = models.CharField(primary_key=True, max_length=48)
    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="sentences")
    position = models.IntegerField()
    text = models.TextField()
    paragraph = models.ForeignKey(
        Paragraph, on_delete=models.SET_NULL, null=True, blank=True, related_name="sentences"
    )
    published = models.BooleanField(default=True, db_index=True)

    class Meta:
        ordering = ["work_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["work", "position"], name="sentence_work_position")
        ]

    def __str__(self) -> str:
        return self.id


class WorkImage(models.Model):
    """A figure image from the folder of a work's Markdown, in order of first appearance."""

    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="images")
    name = models.CharField(max_length=255, help_text="File name in the Markdown folder.")
    position = models.IntegerField()
    image = models.FileField(upload_to="corpus/images", max_length=500)
    caption = models.TextField(
        blank=True, default="", help_text="The line or paragraph after the image link, if any."
    )
    citation = models.TextField(
        blank=True,
        default="",
        help_text="The paragraph citing the figure (see apps.corpus.importers.figures).",
    )
    thumbnail = models.FileField(
        upload_to="corpus/thumbnails",
        max_length=500,
        blank=True,
        help_text="A metadata-free JPEG copy, written when the figure is embedded.",
    )

    class Meta:
        ordering = ["work_id", "position"]
        constraints = [models.UniqueConstraint(fields=["work", "name"], name="workimage_name")]

    def __str__(self) -> str:
        return f"{self.work_id}/{self.name}"


class _ItemEmbedding(models.Model):
    """What the two vector tables share: the model key, a ``halfvec`` without a fixed
    dimension, and the copies of ``work_id`` and ``searchable`` that search filters on."""

    model = models.CharField(max_length=32)
    # A copy of the item's work: deleting the item already deletes the row, so no constraint.
    work = models.ForeignKey(
        Work, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    searchable = models.BooleanField(default=True)
    embedding = HalfVectorField()

    class Meta:
        abstract = True


class SentenceEmbedding(_ItemEmbedding):
    """One sentence's embedding under one model key, stored as a dimensionless ``halfvec``.

    The column has no fixed dimension so that models of any size share the table; each model
    key gets a partial HNSW expression index on ``embedding::halfvec(D)`` (see
    :func:`apps.corpus.vectors.ensure_vector_index`) and queries use the same cast.
    ``work_id`` and ``searchable`` (work and sentence both published) are copies kept in sync
    by the services, so filtered search reads this table alone.
    """

    pk = models.CompositePrimaryKey("model", "sentence")
    sentence = models.ForeignKey(Sentence, on_delete=models.CASCADE, related_name="embeddings")

    class Meta:
        indexes = [models.Index(fields=["work", "model"], name="embedding_work_model")]

    def __str__(self) -> str:
        return f"{self.model}:{self.sentence_id}"


class FigureEmbedding(_ItemEmbedding):
    """One figure image's embedding under one model key (the vision tower's whole-image view,
    the same view as an analysis's query vector), stored like :class:`SentenceEmbedding`: a
    dimensionless ``halfvec`` with a per-model partial HNSW index
    (:data:`apps.corpus.vectors.FIGURES`), and copies of ``work_id`` and ``searchable`` (= the
    work is published) kept by the services, so that figure search reads this table alone.
    """

    pk = models.CompositePrimaryKey("model", "figure")
    figure = models.ForeignKey(WorkImage, on_delete=models.CASCADE, related_name="embeddings")

    class Meta:
        indexes = [models.Index(fields=["work", "model"], name="figure_embedding_work_model")]

    def __str__(self) -> str:
        return f"{self.model}:figure {self.figure_id}"
