"""IIIF out in the REST API: an analysis of yours as a Presentation 3 manifest, and its
results as a Web Annotation collection. Private: the owner's token or session, as every
analysis endpoint (share links serve the same documents publicly, `apps.iiif.views`)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.analysis import selectors
from apps.analysis.models import Analysis
from apps.iiif import documents, exports


def _links(request: Request, analysis: Analysis) -> exports.Links:
    base = reverse("api:analysis-iiif-manifest", kwargs={"pk": analysis.pk}).removesuffix(
        "/manifest.json"
    )
    image = reverse("api:analysis-image", kwargs={"pk": analysis.pk})
    return exports.Links(request.build_absolute_uri(base), request.build_absolute_uri(image))


def _owned(request: Request, pk) -> Analysis:
    return get_object_or_404(selectors.list_analyses(request.user), pk=pk)


class AnalysisManifest(APIView):
    """The analysis as a IIIF Presentation 3 manifest: one canvas with the painting, and one
    `commenting` annotation per result (sentence, citation, DOI) on the region it was ranked
    for, plus each heat map's strongest region, in the canvas's `annotations`."""

    @extend_schema(responses={(200, "application/ld+json"): OpenApiTypes.OBJECT})
    def get(self, request: Request, pk) -> HttpResponse:
        analysis = _owned(request, pk)
        return documents.manifest_response(analysis, _links(request, analysis))


class AnalysisAnnotations(APIView):
    """The same annotations as a W3C Web Annotation `AnnotationCollection` (JSON-LD), a
    download."""

    @extend_schema(responses={(200, "application/ld+json"): OpenApiTypes.OBJECT})
    def get(self, request: Request, pk) -> HttpResponse:
        analysis = _owned(request, pk)
        return documents.annotations_response(analysis, _links(request, analysis))
