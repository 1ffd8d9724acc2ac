"""The analysis endpoints of the REST API (`/api/v1/analyses…`, `/search`, `/models`).

Thin: serializers read the input, services and selectors do the work, and refusals are
`ApplicationError`s that the API's exception handler turns into the error envelope.
"""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analysis import figures, selectors, services
from apps.analysis.models import Analysis
from apps.analysis.serializers import (
    AnalysisCreateSerializer,
    AnalysisDetailSerializer,
    AnalysisFromIiifSerializer,
    AnalysisSerializer,
    CellQuerySerializer,
    FigureQuerySerializer,
    FigureTextSearchQuerySerializer,
    HeatmapImageQuerySerializer,
    HeatmapJobSerializer,
    HeatmapRequestSerializer,
    HeatmapValuesSerializer,
    HitSerializer,
    ImageQuerySerializer,
    ModelSerializer,
    RerunSerializer,
    TextHeatmapJobSerializer,
    TextHeatmapRequestSerializer,
    TextSearchQuerySerializer,
    heatmap_values_json,
    hits_json,
    read_query,
)
from apps.core.errors import NotFoundError
from apps.core.files import stored_file_response
from apps.core.throttling import AnalysisRateThrottle
from apps.corpus.selectors import FigureHit, list_published_figures, list_works_for_hits
from apps.corpus.serializers import FigureHitSerializer, figure_hits_json


def _owned(request: Request, pk) -> Analysis:
    return get_object_or_404(selectors.list_analyses(request.user), pk=pk)


class AnalysisListCreate(generics.ListAPIView):
    """List your analyses, newest first; upload a painting to start one."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        return selectors.list_analyses(self.request.user)

    def get_serializer_class(self):
        # The browsable API builds its POST form from this: the create fields, not the output.
        if self.request.method == "POST":
            return AnalysisCreateSerializer
        return AnalysisSerializer

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(AnalysisRateThrottle())
        return throttles

    @extend_schema(
        request={
            "multipart/form-data": AnalysisCreateSerializer,
            "application/json": AnalysisFromIiifSerializer,
        },
        responses={202: AnalysisSerializer},
    )
    def post(self, request: Request) -> Response:
        form = AnalysisCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        options = {
            "owner": request.user,
            "model_key": data["model"],
            "crop": data.get("crop"),
            "topic_ids": data["topics"],
            "creator_ids": data["creators"],
        }
        if data["iiif"]:
            analysis = services.create_analysis_from_iiif(
                url=data["iiif"], canvas_id=data["canvas"], **options
            )
        else:
            upload = data["image"]
            analysis = services.create_analysis(
                data=upload.read(), filename=upload.name or "", **options
            )
        body = AnalysisSerializer(analysis, context={"request": request}).data
        location = reverse("api:analysis-detail", kwargs={"pk": analysis.pk})
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


@extend_schema_view(
    get=extend_schema(
        description="Status, progress and ranked results (sentence, score, work) of one analysis."
    ),
    delete=extend_schema(
        description="Delete the analysis with its results, heat maps and stored images; its job "
        "is cancelled if it still waits in the queue."
    ),
)
class AnalysisDetail(generics.RetrieveDestroyAPIView):
    """One analysis: read it, or delete it with everything stored for it."""

    serializer_class = AnalysisDetailSerializer

    def get_queryset(self):
        return selectors.list_analyses(self.request.user)

    def perform_destroy(self, instance: Analysis) -> None:
        services.delete_analysis(instance)


class AnalysisRerun(APIView):
    """Change the model or the filters: re-ranks at once when the model's vectors exist."""

    @extend_schema(
        request=RerunSerializer,
        responses={200: AnalysisDetailSerializer, 202: AnalysisDetailSerializer},
    )
    def post(self, request: Request, pk) -> Response:
        analysis = _owned(request, pk)
        form = RerunSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        reranked = services.rerun_analysis(
            analysis,
            model_key=form.validated_data["model"],
            topic_ids=form.validated_data["topics"],
            creator_ids=form.validated_data["creators"],
        )
        analysis.refresh_from_db()
        body = AnalysisDetailSerializer(analysis, context={"request": request}).data
        return Response(body, status=status.HTTP_200_OK if reranked else status.HTTP_202_ACCEPTED)


class AnalysisImage(APIView):
    """The stored (metadata-free) image, or its thumbnail with `?size=thumbnail`."""

    @extend_schema(parameters=[ImageQuerySerializer], responses={(200, "image/*"): bytes})
    def get(self, request: Request, pk) -> FileResponse:
        analysis = _owned(request, pk)
        query = read_query(ImageQuerySerializer, request)
        if not analysis.prepared:
            raise NotFoundError(
                "image_not_prepared",
                "No copy of the painting is stored yet: the worker makes it from a large "
                "upload before its analysis.",
            )
        field = analysis.thumbnail if query["size"] == "thumbnail" else analysis.image
        return stored_file_response(field)


class CellResults(APIView):
    """Sentences for one cell of the grid, from its stored vector (no model call)."""

    @extend_schema(parameters=[CellQuerySerializer], responses={200: HitSerializer(many=True)})
    def get(self, request: Request, pk, row: int, col: int) -> Response:
        analysis = _owned(request, pk)
        query = read_query(CellQuerySerializer, request)
        hits = services.rank_cell(analysis, row, col, query["k"])
        # The ranking just stored, answered from the hits in hand rather than read back.
        return Response(hits_json(hits, list_works_for_hits(hits)))


class HeatmapRequest(APIView):
    """Queue Grad-ECLIP maps for up to 10 sentences, computed in one pass."""

    @extend_schema(request=HeatmapRequestSerializer, responses={202: HeatmapJobSerializer})
    def post(self, request: Request, pk) -> Response:
        analysis = _owned(request, pk)
        form = HeatmapRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job_id = services.request_heatmaps(analysis, form.validated_data["sentence_ids"])
        return Response({"job_id": job_id}, status=status.HTTP_202_ACCEPTED)


class HeatmapDetail(APIView):
    """A computed map: `.png` over the image (at its own size, or `max_side`), `.json` as raw
    values."""

    @extend_schema(
        parameters=[HeatmapImageQuerySerializer],
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "application/json"): HeatmapValuesSerializer,
        },
    )
    def get(self, request: Request, pk, sentence_id: str, fmt: str) -> HttpResponse:
        analysis = _owned(request, pk)
        return _heatmap_response(request, selectors.get_heatmap(analysis, sentence_id), fmt)


class TextHeatmapRequest(APIView):
    """'Where is …?': queue a Grad-ECLIP map of any text over the image."""

    @extend_schema(request=TextHeatmapRequestSerializer, responses={202: TextHeatmapJobSerializer})
    def post(self, request: Request, pk) -> Response:
        analysis = _owned(request, pk)
        form = TextHeatmapRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        digest, job_id = services.request_text_heatmap(analysis, form.validated_data["text"])

        def url(fmt: str) -> str:
            path = reverse(
                "api:analysis-text-heatmap", kwargs={"pk": pk, "digest": digest, "fmt": fmt}
            )
            return request.build_absolute_uri(path)

        body = {"job_id": job_id, "digest": digest, "png_url": url("png"), "json_url": url("json")}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class TextHeatmapDetail(APIView):
    """A computed 'where is' map, as `.png` (optionally `max_side`) or `.json`."""

    @extend_schema(
        parameters=[HeatmapImageQuerySerializer],
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "application/json"): HeatmapValuesSerializer,
        },
    )
    def get(self, request: Request, pk, digest: str, fmt: str) -> HttpResponse:
        analysis = _owned(request, pk)
        return _heatmap_response(request, selectors.get_text_heatmap(analysis, digest), fmt)


def _heatmap_response(request: Request, heatmap, fmt: str) -> HttpResponse:
    if fmt not in ("png", "json"):
        raise NotFoundError("bad_format", "Heatmaps come as .png or .json.")
    if heatmap is None:
        raise NotFoundError(
            "heatmap_not_ready", "There is no such heatmap yet; request it and try again."
        )
    if fmt == "png":
        query = read_query(HeatmapImageQuerySerializer, request)
        png = services.render_heatmap_png(heatmap, query.get("max_side"))
        return HttpResponse(png, content_type="image/png")
    return Response(heatmap_values_json(heatmap))


class TextSearch(APIView):
    """Sentences closest to a text query (`q`), with the same filters as analyses. The text is
    embedded by a model worker (cached), never by the web process."""

    @extend_schema(
        parameters=[TextSearchQuerySerializer], responses={200: HitSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        query = read_query(TextSearchQuerySerializer, request)
        hits = services.search_text(
            query["q"],
            model_key=query["model"],
            topic_ids=query["topics"],
            creator_ids=query["creators"],
            k=query["k"],
        )
        return Response(hits_json(hits, list_works_for_hits(hits)))


class ModelList(APIView):
    """The model keys, what the workers have loaded, and any adapter fallback."""

    @extend_schema(responses={200: ModelSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(ModelSerializer(selectors.list_models(), many=True).data)


# --- Figure search: plates of the corpus like the image, a crop, a cell, or a text. ---------


class AnalysisFigures(APIView):
    """Figures of the corpus nearest to the analysis's image (a region analysis: its crop) or,
    with `cell=r,c`, to one grid cell; from the stored vectors, under the analysis's model and
    filters (no model call)."""

    @extend_schema(
        parameters=[FigureQuerySerializer], responses={200: FigureHitSerializer(many=True)}
    )
    def get(self, request: Request, pk) -> Response:
        analysis = _owned(request, pk)
        query = read_query(FigureQuerySerializer, request)
        hits = figures.figures_for_analysis(analysis, cell=query.get("cell"), k=query["k"])
        return Response(_figure_hits(hits, request))


class FigureTextSearch(APIView):
    """Figures nearest to a text query (`q`) under the model's text tower; the text is embedded
    by a model worker (cached), as for `/search`."""

    @extend_schema(
        parameters=[FigureTextSearchQuerySerializer],
        responses={200: FigureHitSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        query = read_query(FigureTextSearchQuerySerializer, request)
        hits = figures.search_figures_by_text(
            query["q"],
            model_key=query["model"],
            topic_ids=query["topics"],
            creator_ids=query["creators"],
            k=query["k"],
        )
        return Response(_figure_hits(hits, request))


def _figure_hits(hits: list[FigureHit], request: Request) -> list[dict]:
    return figure_hits_json(hits, list_published_figures(hit.figure_id for hit in hits), request)
