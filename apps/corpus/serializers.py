"""JSON shapes of corpus objects that other apps' responses embed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.urls import reverse
from rest_framework import serializers
from rest_framework.request import Request

from apps.corpus.models import Work, WorkImage
from apps.corpus.selectors import FigureHit


def work_summary(work: Work) -> dict:
    """What a sentence or a hit shows of its work. Built directly rather than by a DRF
    serializer: a serializer per hit deep-copies its fields each time, 5 ms for 25 hits."""
    return {
        "id": work.id,
        "title": work.display_title,
        "author": work.author,
        "year": work.year,
        "doi": work.doi,
    }


class WorkSummarySerializer(serializers.Serializer):
    """The schema of `work_summary`."""

    id = serializers.CharField()
    title = serializers.CharField(help_text="Plain text (the corpus's HTML markup removed).")
    author = serializers.CharField()
    year = serializers.CharField()
    doi = serializers.CharField()


def figure_json(figure: WorkImage, request: Request) -> dict:
    """What a figure hit and the figure endpoint show of a figure (`FigureSerializer`); its
    `work` must be loaded. Built directly, as `work_summary`, for the same reason."""
    image = request.build_absolute_uri(reverse("api:work-image", kwargs={"pk": figure.pk}))
    work = figure.work
    return {
        "id": figure.pk,
        "name": figure.name,
        "image_url": image,
        "thumbnail_url": f"{image}?size=thumbnail",
        "caption": figure.caption or None,
        "citing_paragraph": figure.citation or None,
        "work": {**work_summary(work), "doi_url": work.doi_url, "bibtex": work.bibtex},
    }


def figure_hits_json(
    hits: Iterable[FigureHit], figures: Mapping[int, WorkImage], request: Request
) -> list[dict]:
    """Fresh figure hits in `FigureHitSerializer`'s shape; `figures` by id holds each hit's."""
    return [
        {"rank": hit.rank, "score": hit.score, **figure_json(figures[hit.figure_id], request)}
        for hit in hits
        if hit.figure_id in figures  # a work unpublished since the search: left out
    ]


class FigureWorkSerializer(WorkSummarySerializer):
    doi_url = serializers.CharField(help_text="The DOI as a resolver link; empty without a DOI.")
    bibtex = serializers.CharField()


class FigureSerializer(serializers.Serializer):
    """The schema of `figure_json`."""

    id = serializers.IntegerField(help_text="The figure's id (/api/v1/figures/{id}).")
    name = serializers.CharField(help_text="The image's file name in its work's folder.")
    image_url = serializers.URLField(help_text="The image as stored.")
    thumbnail_url = serializers.URLField(help_text="A JPEG of at most 480 px, without metadata.")
    caption = serializers.CharField(
        allow_null=True, help_text="The line or paragraph after the image in the work's text."
    )
    citing_paragraph = serializers.CharField(
        allow_null=True,
        help_text="The paragraph naming the figure's number (fig. N, plate N), else the first "
        "paragraph after the figure.",
    )
    work = FigureWorkSerializer()


class FigureHitSerializer(FigureSerializer):
    """The schema of `figure_hits_json`: a figure with its rank and exact cosine score."""

    rank = serializers.IntegerField()
    score = serializers.FloatField()
