"""IIIF out: an analysis as a IIIF Presentation 3 manifest, and its results as a W3C Web
Annotation collection (reads only).

One canvas holds the painting (the stored image at its own size, as a `painting`
annotation) and, in the canvas's `annotations` (Mirador reads no manifest-level ones), one
`commenting` annotation per result: the sentence with its citation and DOI as HTML, on the
analysed region (the crop, or the whole canvas). Rankings stored for grid cells follow, on their
cell's box, and then, for each heat map computed under the analysis's current model, an
annotation on the map's strongest cell.

Both documents are built from the same list of `Note`s, so the manifest and the download never
disagree. Plain dicts rather than a library: the shape is small and fixed, and the tests check it
against the schema.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.utils.html import escape

from apps.analysis import selectors
from apps.analysis.models import Analysis, AnalysisResult, Heatmap, IiifSource, ResultQuery

PRESENTATION_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
ANNOTATION_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
ANNOTATION_CONTENT_TYPE = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
MANIFEST_CONTENT_TYPE = (
    'application/ld+json; profile="http://iiif.io/api/presentation/3/context.json"'
)
CELL_RESULTS = 5
"""How many of a cell's stored sentences are annotated: a cell ranked with k=100 would
otherwise bury the image's own results."""


@dataclass(frozen=True)
class Links:
    """The addresses a document names: where it is served, and where its image is."""

    base: str  # the folder of the document, e.g. https://host/api/v1/analyses/<id>/iiif
    image: str

    @property
    def manifest(self) -> str:
        return f"{self.base}/manifest.json"

    @property
    def canvas(self) -> str:
        return f"{self.base}/canvas/1"

    @property
    def collection(self) -> str:
        return f"{self.base}/annotations.jsonld"


@dataclass(frozen=True)
class Note:
    """One annotation: an id within the document, HTML and plain text, and a box (left, top,
    width, height) in image pixels."""

    key: str
    html: str
    text: str
    box: tuple[int, int, int, int]


def _box(left: float, top: float, right: float, bottom: float) -> tuple[int, int, int, int]:
    x, y = round(left), round(top)
    return x, y, max(1, round(right) - x), max(1, round(bottom) - y)


def _citation(result: AnalysisResult, where: str) -> tuple[str, str]:
    sentence, work = result.sentence, result.sentence.work
    parts = [part for part in (work.author, f"({work.year})" if work.year else "") if part]
    byline = " ".join(parts)
    doi = work.doi_url
    score = f"{where}, rank {result.rank}, score {result.score:.3f}"
    html = (
        f"<p>{escape(sentence.text)}</p><p><cite>{escape(work.display_title)}</cite>"
        + (f", {escape(byline)}" if byline else "")
        + (f'. <a href="{escape(doi)}">{escape(doi)}</a>' if doi else "")
        + f"</p><p><small>{escape(score)}</small></p>"
    )
    text = f"{sentence.text} — {work.display_title}" + (f", {byline}" if byline else "")
    text += (f". {doi}" if doi else "") + f" ({score})"
    return html, text


def _peak(heatmap: Heatmap, region: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The box of the map's strongest cell, in image pixels (a map lies over the region)."""
    values = heatmap.array()
    row, col = np.unravel_index(int(np.argmax(values)), values.shape)
    left, top, right, bottom = region
    width, height = (right - left) / heatmap.cols, (bottom - top) / heatmap.rows
    return (
        left + col * width,
        top + row * height,
        left + (col + 1) * width,
        top + (row + 1) * height,
    )


def list_notes(analysis: Analysis) -> list[Note]:
    """The annotations of an analysis: its results, its stored cell rankings, its heat maps'
    strongest cells. None before it has finished."""
    if analysis.status != Analysis.Status.DONE:
        return []
    region = tuple(analysis.crop or (0, 0, analysis.width, analysis.height))
    where = "The region" if analysis.crop else "The whole painting"
    notes = []
    for result in selectors.list_results(analysis, analysis.query_kind):
        html, text = _citation(result, where)
        notes.append(Note(f"result/{result.rank}", html, text, _box(*region)))
    embedding = selectors.get_embedding(analysis)
    cells = embedding.cell_boxes if embedding and embedding.cell_boxes else None
    if cells:
        stored = (
            AnalysisResult.objects.filter(
                analysis=analysis, query=ResultQuery.CELL, rank__lte=CELL_RESULTS
            )
            .select_related("sentence__work")
            .order_by("cell_row", "cell_col", "rank")
        )
        for result in stored:
            row, col = result.cell_row, result.cell_col
            if row >= len(cells) or col >= len(cells[row]):
                continue
            html, text = _citation(result, f"Row {row + 1}, column {col + 1}")
            notes.append(
                Note(f"cell/{row}/{col}/{result.rank}", html, text, _box(*cells[row][col]))
            )
    heatmaps = analysis.heatmaps.filter(model_key=analysis.model_key).select_related("sentence")
    for heatmap in heatmaps.order_by("created_at", "pk"):
        subject = heatmap.sentence.text if heatmap.sentence else f"Where is “{heatmap.text}”?"
        label = "Strongest region of the heatmap for"
        notes.append(
            Note(
                f"heatmap/{heatmap.pk}",
                f"<p>{escape(label)}: {escape(subject)}</p>",
                f"{label}: {subject}",
                _box(*_peak(heatmap, region)),
            )
        )
    return notes


def _target(links: Links, note: Note, *, on_image: bool) -> dict:
    x, y, w, h = note.box
    source = (
        {"id": links.image, "type": "Image"}
        if on_image
        else {
            "id": links.canvas,
            "type": "Canvas",
            "partOf": [{"id": links.manifest, "type": "Manifest"}],
        }
    )
    return {
        "type": "SpecificResource",
        "source": source,
        "selector": {
            "type": "FragmentSelector",
            "conformsTo": "http://www.w3.org/TR/media-frags/",
            "value": f"xywh={x},{y},{w},{h}",
        },
    }


def _annotation(links: Links, note: Note, *, on_image: bool = False) -> dict:
    return {
        "id": f"{links.base}/annotation/{note.key}",
        "type": "Annotation",
        "motivation": "commenting",
        "body": {
            "type": "TextualBody",
            "format": "text/html",
            "language": "en",
            "value": note.html,
        },
        "target": _target(links, note, on_image=on_image),
    }


def _title(analysis: Analysis) -> str:
    name = analysis.original_filename or "Untitled painting"
    return f"{name} (region {', '.join(map(str, analysis.crop))})" if analysis.crop else name


def _language_map(text: str) -> dict:
    return {"en": [text]}


def _image_format(analysis: Analysis) -> str:
    guessed, _ = mimetypes.guess_type(analysis.image.name)
    return guessed or "image/jpeg"


def _provenance(source: IiifSource | None) -> dict:
    """The source's terms and addresses, as a manifest says them."""
    if source is None:
        return {}
    fields: dict = {}
    if source.attribution:
        fields["requiredStatement"] = {
            "label": _language_map(source.attribution_label or "Attribution"),
            "value": _language_map(source.attribution),
        }
    if source.rights:
        fields["rights"] = source.rights
    metadata = [
        (name, value)
        for name, value in (
            ("Source manifest", source.manifest_url),
            ("Source canvas", source.canvas_id),
            ("Image service", source.service_id),
            ("Image fetched", source.image_url),
        )
        if value
    ]
    if metadata:
        fields["metadata"] = [
            {"label": _language_map(name), "value": _language_map(value)}
            for name, value in metadata
        ]
    if source.manifest_url:
        fields["seeAlso"] = [
            {
                "id": source.manifest_url,
                "type": "Dataset",
                "format": "application/ld+json",
                "label": _language_map("The IIIF manifest the painting was taken from"),
            }
        ]
    return fields


def build_manifest(analysis: Analysis, links: Links, notes: Iterable[Note] | None = None) -> dict:
    """The analysis as a Presentation 3 manifest with its results on the canvas."""
    notes = list_notes(analysis) if notes is None else list(notes)
    source = selectors.get_iiif_source(analysis)
    title = _title(analysis)
    painting = {
        "id": f"{links.base}/annotation/painting",
        "type": "Annotation",
        "motivation": "painting",
        "body": {
            "id": links.image,
            "type": "Image",
            "format": _image_format(analysis),
            "width": analysis.width,
            "height": analysis.height,
        },
        "target": links.canvas,
    }
    canvas = {
        "id": links.canvas,
        "type": "Canvas",
        "label": _language_map(title),
        "width": analysis.width,
        "height": analysis.height,
        "items": [
            {"id": f"{links.base}/page/painting", "type": "AnnotationPage", "items": [painting]}
        ],
    }
    if notes:
        canvas["annotations"] = [
            {
                "id": f"{links.base}/page/results",
                "type": "AnnotationPage",
                "label": _language_map("ArteFact: sentences of scholarship"),
                "items": [_annotation(links, note) for note in notes],
            }
        ]
    return {
        "@context": PRESENTATION_CONTEXT,
        "id": links.manifest,
        "type": "Manifest",
        "label": _language_map(title),
        "summary": _language_map(
            "Sentences of art-history scholarship whose embedding is closest to the painting, "
            "found by ArteFact."
        ),
        **_provenance(source),
        "items": [canvas],
    }


def build_annotation_collection(
    analysis: Analysis, links: Links, notes: Iterable[Note] | None = None
) -> dict:
    """The same annotations as a W3C Web Annotation collection, on the image itself (so that
    the download needs no IIIF viewer to be read)."""
    notes = list_notes(analysis) if notes is None else list(notes)
    items = [_annotation(links, note, on_image=True) for note in notes]
    return {
        "@context": ANNOTATION_CONTEXT,
        "id": links.collection,
        "type": "AnnotationCollection",
        "label": _title(analysis),
        "total": len(items),
        "first": {
            "id": f"{links.collection}#page1",
            "type": "AnnotationPage",
            "startIndex": 0,
            "items": items,
        },
    }
