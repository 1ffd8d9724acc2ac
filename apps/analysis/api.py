"""The analysis endpoints of the REST API (`/api/v1/analyses…`). Thin: services do the work."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analysis import selectors, services
from apps.analysis.models import Analysis
from apps.analysis.serializers import (
    AnalysisCreateSerializer,
    AnalysisSerializer,
    HeatmapRequestSerializer,
    HitSerializer,
    RerunSerializer,
    hits_json,
)
from apps.corpus.selectors import works_of
from artefact_site.api import AnalysisRateThrottle, ApiError


def _input_error(error: services.AnalysisInputError) -> ApiError:
    return ApiError(error.code, str(error))


class AnalysisDetailSerializer(AnalysisSerializer):
    results = serializers.SerializerMethodField()

    class Meta(AnalysisSerializer.Meta):
        fields = [*AnalysisSerializer.Meta.fields, "results"]

    @extend_schema_field(HitSerializer(many=True))
    def get_results(self, analysis: Analysis) -> list[dict]:
        results = selectors.ranked_results(analysis, analysis.query_kind)
        return HitSerializer(results, many=True).data


def _owned(request: Request, pk) -> Analysis:
    return get_object_or_404(selectors.analyses_for(request.user), pk=pk)


class AnalysisListCreate(generics.ListAPIView):
    """List your analyses, newest first; upload a painting to start one."""

    serializer_class = AnalysisSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        return selectors.analyses_for(self.request.user)

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(AnalysisRateThrottle())
        return throttles

    @extend_schema(
        request={"multipart/form-data": AnalysisCreateSerializer},
        responses={202: AnalysisSerializer},
    )
    def post(self, request: Request) -> Response:
        form = AnalysisCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["image"]
        if upload.size > settings.ANALYSIS_MAX_UPLOAD_BYTES:
            raise ApiError(
                "file_too_large",
                f"The file is {upload.size / 1_000_000:.1f} MB; the limit is "
                f"{settings.ANALYSIS_MAX_UPLOAD_BYTES / 1_000_000:.1f} MB.",
            )
        try:
            analysis = services.create_analysis(
                owner=request.user,
                data=upload.read(),
                filename=upload.name or "",
                model_key=form.validated_data["model"],
                crop=form.validated_data.get("crop"),
                topic_ids=form.validated_data["topics"],
                creator_ids=form.validated_data["creators"],
            )
        except services.AnalysisInputError as error:
            raise _input_error(error) from None
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
        return selectors.analyses_for(self.request.user)

    def perform_destroy(self, instance: Analysis) -> None:
        services.delete_analysis(instance)


class AnalysisRerun(APIView):
    """Change the model or the filters: re-ranks at once when the model's vectors exist."""

    @extend_schema(request=RerunSerializer, responses={200: AnalysisDetailSerializer})
    def post(self, request: Request, pk) -> Response:
        analysis = _owned(request, pk)
        form = RerunSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            reranked = services.rerun_analysis(
                analysis,
                model_key=form.validated_data["model"],
                topic_ids=form.validated_data["topics"],
                creator_ids=form.validated_data["creators"],
            )
        except services.AnalysisInputError as error:
            raise _input_error(error) from None
        analysis.refresh_from_db()
        body = AnalysisDetailSerializer(analysis, context={"request": request}).data
        return Response(body, status=status.HTTP_200_OK if reranked else status.HTTP_202_ACCEPTED)


class AnalysisImage(APIView):
    """The stored (metadata-free) image, or its thumbnail with `?size=thumbnail`."""

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk) -> FileResponse:
        analysis = _owned(request, pk)
        field = (
            analysis.thumbnail
            if request.query_params.get("size") == "thumbnail"
            else analysis.image
        )
        return FileResponse(field.open("rb"))


class CellResults(APIView):
    """Sentences for one cell of the grid, from its stored vector (no model call)."""

    @extend_schema(
        parameters=[OpenApiParameter("k", int, description="How many sentences (1–100).")],
        responses={200: HitSerializer(many=True)},
    )
    def get(self, request: Request, pk, row: int, col: int) -> Response:
        analysis = _owned(request, pk)
        try:
            k = int(request.query_params.get("k", 10))
        except ValueError:
            raise ApiError("bad_k", "k must be a whole number from 1 to 100.") from None
        if not 1 <= k <= 100:
            raise ApiError("bad_k", "k must be a whole number from 1 to 100.")
        try:
            hits = services.cell_results(analysis, row, col, k)
        except services.AnalysisInputError as error:
            raise _input_error(error) from None
        # The ranking just stored, answered from the hits in hand rather than read back.
        return Response(hits_json(hits, works_of(hits)))


class HeatmapRequest(APIView):
    """Queue Grad-ECLIP maps for up to 10 sentences, computed in one pass."""

    @extend_schema(
        request=HeatmapRequestSerializer,
        responses={202: inline_serializer("HeatmapJob", {"job_id": serializers.CharField()})},
    )
    def post(self, request: Request, pk) -> Response:
        analysis = _owned(request, pk)
        form = HeatmapRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            job_id = services.request_heatmaps(analysis, form.validated_data["sentence_ids"])
        except services.AnalysisInputError as error:
            raise _input_error(error) from None
        return Response({"job_id": job_id}, status=status.HTTP_202_ACCEPTED)


class HeatmapDetail(APIView):
    """A computed map: `.png` over the image at its own size, `.json` as raw values."""

    @extend_schema(
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "application/json"): OpenApiTypes.OBJECT,
        }
    )
    def get(self, request: Request, pk, sentence_id: str, fmt: str) -> HttpResponse:
        analysis = _owned(request, pk)
        if fmt not in ("png", "json"):
            raise ApiError(
                "bad_format", "Heatmaps come as .png or .json.", status.HTTP_404_NOT_FOUND
            )
        heatmap = selectors.heatmap_for(analysis, sentence_id)
        if heatmap is None:
            raise ApiError(
                "heatmap_not_ready",
                "There is no heatmap for this sentence yet; request it and try again.",
                status.HTTP_404_NOT_FOUND,
            )
        if fmt == "png":
            return HttpResponse(services.heatmap_png(heatmap), content_type="image/png")
        values = heatmap.array()
        body = {
            "sentence_id": sentence_id,
            "model": heatmap.model_key,
            "rows": heatmap.rows,
            "cols": heatmap.cols,
            "box": analysis.crop or [0, 0, analysis.width, analysis.height],
            "values": [[round(float(v), 4) for v in row] for row in values],
        }
        return HttpResponse(json.dumps(body), content_type="application/json")


class TextSearch(APIView):
    """Sentences closest to a text query (`q`), with the same filters as analyses."""

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True),
            OpenApiParameter("model", str),
            OpenApiParameter("topics", str, description="Comma-separated topic ids."),
            OpenApiParameter("creators", str, description="Comma-separated creator slugs."),
            OpenApiParameter("k", int),
        ],
        responses={200: HitSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        try:
            k = int(params.get("k", settings.ANALYSIS_RESULTS))
        except ValueError:
            raise ApiError("bad_k", "k must be a whole number from 1 to 100.") from None
        if not 1 <= k <= 100:
            raise ApiError("bad_k", "k must be a whole number from 1 to 100.")
        try:
            hits = services.search_text(
                params.get("q", ""),
                model_key=params.get("model", "paintingclip"),
                topic_ids=_split(params.get("topics", "")),
                creator_ids=_split(params.get("creators", "")),
                k=k,
            )
        except services.AnalysisInputError as error:
            raise _input_error(error) from None
        except services.ModelUnavailableError as error:
            raise ApiError(
                "model_unavailable", str(error), status.HTTP_503_SERVICE_UNAVAILABLE
            ) from None
        return Response(hits_json(hits, works_of(hits)))


class ModelList(APIView):
    """The model keys, what the workers have loaded, and any adapter fallback."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(selectors.models_on_workers())


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
