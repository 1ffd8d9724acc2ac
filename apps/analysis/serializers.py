"""DRF serializers of the analysis API: input shapes and the JSON of results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.urls import reverse
from rest_framework import serializers

from apps.analysis.models import Analysis, AnalysisResult
from apps.corpus.models import Work
from apps.corpus.selectors import SentenceHit
from apps.corpus.serializers import work_summary


class CropField(serializers.ListField):
    """A crop box as four numbers, or a comma-separated string in multipart forms."""

    child = serializers.FloatField()

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], str):
            data = data[0]
        if isinstance(data, str):
            data = [part for part in data.replace(" ", "").split(",") if part]
        return super().to_internal_value(data)


class IdListField(serializers.ListField):
    """Ids as repeated form fields or one comma-separated value."""

    child = serializers.CharField(max_length=64)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        flat = [part.strip() for item in data for part in str(item).split(",") if part.strip()]
        return super().to_internal_value(flat)


class AnalysisCreateSerializer(serializers.Serializer):
    image = serializers.FileField(
        allow_empty_file=True, help_text="JPEG, PNG, WebP, TIFF or GIF (first frame)."
    )
    crop = CropField(
        required=False, min_length=4, max_length=4, help_text="left,top,right,bottom in pixels."
    )
    model = serializers.CharField(default="paintingclip")
    topics = IdListField(required=False, default=list)
    creators = IdListField(required=False, default=list)


class RerunSerializer(serializers.Serializer):
    model = serializers.CharField()
    topics = IdListField(required=False, default=list)
    creators = IdListField(required=False, default=list)


class HeatmapRequestSerializer(serializers.Serializer):
    sentence_ids = IdListField(min_length=1)


class WorkSummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField(source="display_title")
    author = serializers.CharField()
    year = serializers.CharField()
    doi = serializers.CharField()


def _hit(rank: int, score: float, sentence_id: str, text: str, work: Work) -> dict:
    return {
        "rank": rank,
        "score": score,
        "sentence_id": sentence_id,
        "text": text,
        "work": work_summary(work),
    }


def hits_json(hits: Iterable[SentenceHit], works: Mapping[str, Work]) -> list[dict]:
    """Fresh search hits in `HitSerializer`'s shape, `works` by id holding each hit's work."""
    return [
        _hit(hit.rank, hit.score, hit.sentence_id, hit.text, works[hit.work_id]) for hit in hits
    ]


class HitSerializer(serializers.Serializer):
    """A ranked sentence, from a stored AnalysisResult (fresh hits go through `hits_json`)."""

    rank = serializers.IntegerField()
    score = serializers.FloatField()
    sentence_id = serializers.CharField()
    text = serializers.CharField()
    work = WorkSummarySerializer()

    def to_representation(self, instance: AnalysisResult) -> dict:
        sentence = instance.sentence
        return _hit(instance.rank, instance.score, sentence.id, sentence.text, sentence.work)


class AnalysisSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    topics = serializers.SlugRelatedField(many=True, read_only=True, slug_field="id")
    creators = serializers.SlugRelatedField(many=True, read_only=True, slug_field="slug")
    model = serializers.CharField(source="model_key")

    class Meta:
        model = Analysis
        fields = [
            "id",
            "status",
            "progress",
            "error",
            "original_filename",
            "file_size",
            "width",
            "height",
            "crop",
            "model",
            "topics",
            "creators",
            "image_url",
            "thumbnail_url",
            "timings",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def _image_url(self, analysis: Analysis, query: str = "") -> str:
        path = reverse("api:analysis-image", kwargs={"pk": analysis.pk}) + query
        return self.context["request"].build_absolute_uri(path)

    def get_image_url(self, analysis: Analysis) -> str:
        return self._image_url(analysis)

    def get_thumbnail_url(self, analysis: Analysis) -> str:
        return self._image_url(analysis, "?size=thumbnail")
