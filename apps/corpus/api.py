"""Read-only corpus endpoints of the REST API: sentences, works, topics, creators."""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ApplicationError, NotFoundError
from apps.core.files import stored_file_response
from apps.corpus import figures, selectors
from apps.corpus.models import Creator, Sentence, Topic, WorkImage
from apps.corpus.serializers import (
    FigureSerializer,
    WorkSummarySerializer,
    figure_json,
    work_summary,
)


class TopicSerializer(serializers.ModelSerializer):
    class Meta:
        model = Topic
        fields = ["id", "name"]


class CreatorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Creator
        fields = ["slug", "name"]


class NeighbourSerializer(serializers.ModelSerializer):
    class Meta:
        model = Sentence
        fields = ["id", "position", "text"]


def _work_summary(work) -> dict:
    return {**work_summary(work), "doi_url": work.doi_url}


class LinkedWorkSummarySerializer(WorkSummarySerializer):
    doi_url = serializers.CharField(help_text="The DOI as a resolver link; empty without a DOI.")


class SentenceDetailSerializer(serializers.Serializer):
    id = serializers.CharField()
    text = serializers.CharField()
    position = serializers.IntegerField()
    paragraph = serializers.CharField(allow_null=True)
    before = NeighbourSerializer(many=True)
    after = NeighbourSerializer(many=True)
    work = LinkedWorkSummarySerializer()


class WorkImageLinkSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.URLField()


class WorkDetailSerializer(LinkedWorkSummarySerializer):
    title_html = serializers.CharField(help_text="The title as the corpus holds it (HTML).")
    link = serializers.CharField()
    bibtex = serializers.CharField()
    relevance = serializers.FloatField(allow_null=True)
    sentence_count = serializers.IntegerField()
    creators = CreatorSerializer(many=True)
    topics = TopicSerializer(many=True)
    images = WorkImageLinkSerializer(many=True)


@extend_schema_view(
    get=extend_schema(
        parameters=[
            OpenApiParameter("all", str, enum=["1"], description="1: include unnamed topic ids.")
        ]
    )
)
class TopicList(generics.ListAPIView):
    """Topics that have a name (the filter list); `?all=1` includes unnamed ids."""

    serializer_class = TopicSerializer

    def get_queryset(self):
        queryset = Topic.objects.order_by("name", "id")
        if self.request.query_params.get("all") != "1":
            queryset = queryset.exclude(name__isnull=True)
        return queryset


class CreatorList(generics.ListAPIView):
    serializer_class = CreatorSerializer
    queryset = Creator.objects.order_by("name")


class SentenceDetail(APIView):
    """A sentence with its paragraph, its neighbours and its work."""

    @extend_schema(responses={200: SentenceDetailSerializer})
    def get(self, request: Request, sentence_id: str) -> Response:
        context = selectors.get_sentence_context(sentence_id)
        if context is None:
            raise NotFoundError("not_found", f"There is no sentence {sentence_id!r}.")
        sentence = context.sentence
        return Response(
            {
                "id": sentence.id,
                "text": sentence.text,
                "position": sentence.position,
                "paragraph": context.paragraph,
                "before": NeighbourSerializer(context.before, many=True).data,
                "after": NeighbourSerializer(context.after, many=True).data,
                "work": _work_summary(sentence.work),
            }
        )


class WorkDetail(APIView):
    """A work: metadata, BibTeX, DOI link, creators, topics and figure images."""

    @extend_schema(responses={200: WorkDetailSerializer})
    def get(self, request: Request, work_id: str) -> Response:
        details = selectors.get_work_details(work_id)
        if details is None:
            raise NotFoundError("not_found", f"There is no work {work_id!r}.")
        work = details.work
        return Response(
            {
                **_work_summary(work),
                "title_html": work.title,
                "link": work.link,
                "bibtex": work.bibtex,
                "relevance": work.relevance,
                "sentence_count": details.sentence_count,
                "creators": CreatorSerializer(details.creators, many=True).data,
                "topics": TopicSerializer(details.topics, many=True).data,
                "images": [
                    {
                        "name": image.name,
                        "url": request.build_absolute_uri(
                            reverse("api:work-image", kwargs={"pk": image.pk})
                        ),
                    }
                    for image in details.images
                ],
            }
        )


class WorkImageFile(APIView):
    """A figure image of a published work, as stored or (`?size=thumbnail`) as a JPEG of at
    most 480 px without the source file's metadata."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "size",
                str,
                enum=["original", "thumbnail"],
                description="Which copy (default: original).",
            )
        ],
        responses={(200, "image/*"): bytes},
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        image = get_object_or_404(WorkImage, pk=pk, work__published=True)
        size = request.query_params.get("size", "original")
        if size not in ("original", "thumbnail"):
            raise ApplicationError("bad_size", "size: choose original or thumbnail.")
        if size == "thumbnail":
            try:
                return stored_file_response(figures.ensure_thumbnail(image))
            except (OSError, ValueError):
                raise NotFoundError(
                    "image_unreadable", "The figure's image cannot be read, so it has no thumbnail."
                ) from None
        return stored_file_response(image.image)


class FigureDetail(APIView):
    """A figure of a published work: its image links, caption, citing paragraph and work."""

    @extend_schema(responses={200: FigureSerializer})
    def get(self, request: Request, pk: int) -> Response:
        figure = selectors.get_published_figure(pk)
        if figure is None:
            raise NotFoundError("not_found", f"There is no figure {pk}.")
        return Response(figure_json(figure, request))
