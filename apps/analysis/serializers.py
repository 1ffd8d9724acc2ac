"""DRF serializers of the analysis API: every input (bodies and query parameters) and every
response body has one, so the OpenAPI schema describes them all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.request import Request

from apps.analysis import selectors
from apps.analysis.models import Analysis, AnalysisResult, Heatmap
from apps.core.api import error_sentence
from apps.core.errors import ApplicationError
from apps.corpus.models import Work
from apps.corpus.selectors import SentenceHit
from apps.corpus.serializers import WorkSummarySerializer, work_summary
from apps.engine.config import default_model_key


class CropField(serializers.ListField):
    """A crop box as four numbers, or a comma-separated string in multipart forms; an empty
    value (``crop=``, as a form with a blank crop field sends) is no crop."""

    child = serializers.FloatField()

    def get_value(self, dictionary):
        value = super().get_value(dictionary)
        if value in ("", [""], []) and not self.required:
            return empty
        return value

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], str):
            data = data[0]
        if isinstance(data, str):
            data = [part for part in data.replace(" ", "").split(",") if part]
        return super().to_internal_value(data)


class IdListField(serializers.ListField):
    """Ids as repeated form fields or one comma-separated value; in JSON, a list of strings
    (or whole numbers). Anything else in the list is refused: turned into a string, a nested
    list would become an "id" like ``"['a']"``."""

    child = serializers.CharField(max_length=64)
    default_error_messages = {"not_an_id": "Each id is a string; {input!r} is not."}

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        for item in data if isinstance(data, list) else ():
            if isinstance(item, bool) or not isinstance(item, str | int):
                self.fail("not_an_id", input=item)
        if not isinstance(data, list):
            return super().to_internal_value(data)
        flat = [part.strip() for item in data for part in str(item).split(",") if part.strip()]
        return super().to_internal_value(flat)


class SingleFileField(serializers.FileField):
    """A file field that refuses a request carrying several files under its name, where
    Django would silently keep only the last one."""

    default_error_messages = {
        "several": "Send one file per request; this one holds {count} under this name."
    }

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist") and len(dictionary.getlist(self.field_name)) > 1:
            return dictionary.getlist(self.field_name)
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, list):
            self.fail("several", count=len(data))
        return super().to_internal_value(data)


class ModelKeyField(serializers.CharField):
    """A model key; the configured default when none is given."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("default", default_model_key)
        kwargs.setdefault("help_text", "A model key from /api/v1/models.")
        super().__init__(**kwargs)


def read_query(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The request's query parameters read by `serializer_class`; the first invalid one is
    refused as `bad_<name>` with its sentence."""
    form = serializer_class(data=request.query_params)
    if not form.is_valid():
        name, messages = next(iter(form.errors.items()))
        raise ApplicationError(f"bad_{name}", f"{name}: {error_sentence(messages)}")
    return form.validated_data


class AnalysisFromIiifSerializer(serializers.Serializer):
    """An analysis of a painting on a IIIF server (a JSON body, or form fields)."""

    iiif = serializers.CharField(
        max_length=2000,
        help_text="A IIIF Image API info.json or image request URL, or a Presentation 2.1 / 3 "
        "manifest URL.",
    )
    canvas = serializers.CharField(
        max_length=2000,
        required=False,
        default="",
        allow_blank=True,
        help_text="The canvas id, for a manifest of more than one canvas.",
    )
    crop = CropField(
        required=False, min_length=4, max_length=4, help_text="left,top,right,bottom in pixels."
    )
    model = ModelKeyField()
    topics = IdListField(required=False, default=list)
    creators = IdListField(required=False, default=list)


class AnalysisCreateSerializer(AnalysisFromIiifSerializer):
    """An upload (`image`), or a IIIF URL (`iiif`, with `canvas` for a manifest): one of
    them."""

    image = SingleFileField(
        required=False,
        allow_empty_file=True,
        help_text="JPEG, PNG, WebP, TIFF or GIF (first frame); or give `iiif` instead.",
    )
    iiif = serializers.CharField(
        max_length=2000,
        required=False,
        default="",
        allow_blank=True,
        help_text="Instead of `image`: a IIIF Image API info.json or image request URL, or a "
        "Presentation 2.1 / 3 manifest URL.",
    )

    def validate(self, data: dict) -> dict:
        if bool(data.get("image")) == bool(data.get("iiif")):
            raise serializers.ValidationError(
                "Send either an image file or a IIIF URL (`iiif`), not both or neither."
            )
        return data


class RerunSerializer(serializers.Serializer):
    model = serializers.CharField()
    topics = IdListField(required=False, default=list)
    creators = IdListField(required=False, default=list)


class HeatmapRequestSerializer(serializers.Serializer):
    sentence_ids = IdListField(min_length=1)


class HeatmapJobSerializer(serializers.Serializer):
    job_id = serializers.CharField()


class CellQuerySerializer(serializers.Serializer):
    k = serializers.IntegerField(
        min_value=1, max_value=100, default=10, help_text="How many sentences (1–100)."
    )


class ImageQuerySerializer(serializers.Serializer):
    size = serializers.ChoiceField(
        choices=["original", "thumbnail"], default="original", help_text="Which stored copy."
    )


class HeatmapImageQuerySerializer(serializers.Serializer):
    max_side = serializers.IntegerField(
        min_value=64,
        max_value=8192,
        required=False,
        help_text="The PNG no larger than this on its long side (default: the image's size).",
    )


class TextSearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=1000, allow_blank=True, trim_whitespace=False, help_text="The text."
    )
    model = ModelKeyField()
    topics = IdListField(required=False, default=list, help_text="Comma-separated topic ids.")
    creators = IdListField(required=False, default=list, help_text="Comma-separated creator slugs.")
    k = serializers.IntegerField(
        min_value=1,
        max_value=100,
        default=lambda: settings.ANALYSIS_RESULTS,
        help_text="How many sentences (1–100).",
    )


class TextHeatmapRequestSerializer(serializers.Serializer):
    text = serializers.CharField(
        max_length=1000, help_text="Any words: where in the image does the model see them?"
    )


class TextHeatmapJobSerializer(serializers.Serializer):
    job_id = serializers.CharField(
        allow_null=True, help_text="The queued job, or null when the map is already stored."
    )
    digest = serializers.CharField(help_text="The map's id in `…/where/{digest}.png|json`.")
    png_url = serializers.URLField()
    json_url = serializers.URLField()


class HeatmapValuesSerializer(serializers.Serializer):
    sentence_id = serializers.CharField(allow_null=True)
    text = serializers.CharField(help_text="The free text a 'where is' map explains, or empty.")
    model = serializers.CharField()
    rows = serializers.IntegerField()
    cols = serializers.IntegerField()
    box = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="left, top, right, bottom in image pixels: where the map lies.",
    )
    values = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="rows × cols values in [0, 1].",
    )


def heatmap_values_json(heatmap: Heatmap) -> dict:
    analysis = heatmap.analysis
    return {
        "sentence_id": heatmap.sentence_id,
        "text": heatmap.text,
        "model": heatmap.model_key,
        "rows": heatmap.rows,
        "cols": heatmap.cols,
        "box": analysis.crop or [0, 0, analysis.width, analysis.height],
        "values": [[round(float(v), 4) for v in row] for row in heatmap.array()],
    }


class ModelSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    base = serializers.CharField()
    adapter = serializers.CharField(allow_null=True)
    loaded_by_workers = serializers.IntegerField()
    adapter_state = serializers.CharField(allow_null=True)
    dtype = serializers.CharField(allow_null=True)
    text_encoder = serializers.CharField(allow_null=True)
    vision_encoder = serializers.CharField(allow_null=True)
    int8_kernels = serializers.CharField(allow_null=True)
    dtype_warning = serializers.CharField(allow_null=True)
    embedding_dim = serializers.IntegerField(allow_null=True)
    errors = serializers.ListField(child=serializers.CharField())


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


class IiifSourceSerializer(serializers.Serializer):
    """Where an image fetched from a IIIF server came from, and its terms."""

    manifest_url = serializers.CharField()
    canvas_id = serializers.CharField()
    service_id = serializers.CharField()
    image_url = serializers.CharField()
    label = serializers.CharField()
    canvas_label = serializers.CharField()
    attribution = serializers.CharField()
    attribution_label = serializers.CharField()
    rights = serializers.CharField()


class AnalysisSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="The analysis's page in the portal.")
    iiif_source = serializers.SerializerMethodField(
        help_text="The IIIF source of the image, or null for an upload."
    )
    iiif_manifest_url = serializers.SerializerMethodField(
        help_text="This analysis as a IIIF Presentation 3 manifest with its results."
    )
    image_url = serializers.SerializerMethodField(
        help_text="The stored image; null while the worker prepares a large upload."
    )
    thumbnail_url = serializers.SerializerMethodField(
        help_text="Its thumbnail; null while the worker prepares a large upload."
    )
    topics = serializers.SlugRelatedField(many=True, read_only=True, slug_field="id")
    creators = serializers.SlugRelatedField(many=True, read_only=True, slug_field="slug")
    model = serializers.CharField(source="model_key")

    class Meta:
        model = Analysis
        fields = [
            "id",
            "url",
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
            "iiif_source",
            "iiif_manifest_url",
            "timings",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def _image_url(self, analysis: Analysis, query: str = "") -> str | None:
        if not analysis.prepared:
            return None
        path = reverse("api:analysis-image", kwargs={"pk": analysis.pk}) + query
        return self.context["request"].build_absolute_uri(path)

    def get_url(self, analysis: Analysis) -> str:
        path = reverse("analysis:page", kwargs={"pk": analysis.pk})
        return self.context["request"].build_absolute_uri(path)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, analysis: Analysis) -> str | None:
        return self._image_url(analysis)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_thumbnail_url(self, analysis: Analysis) -> str | None:
        return self._image_url(analysis, "?size=thumbnail")

    @extend_schema_field(IiifSourceSerializer(allow_null=True))
    def get_iiif_source(self, analysis: Analysis) -> dict | None:
        source = selectors.get_iiif_source(analysis)
        return IiifSourceSerializer(source).data if source else None

    def get_iiif_manifest_url(self, analysis: Analysis) -> str:
        path = reverse("api:analysis-iiif-manifest", kwargs={"pk": analysis.pk})
        return self.context["request"].build_absolute_uri(path)


class GridSerializer(serializers.Serializer):
    """The grid of cells the model's patch tokens were pooled to, in original-image pixels:
    clients draw it from this and never assume a shape or that it covers the whole image."""

    rows = serializers.IntegerField()
    cols = serializers.IntegerField()
    view_box = serializers.ListField(
        child=serializers.FloatField(),
        help_text="left, top, right, bottom of what the model saw; no cell lies outside it.",
    )
    cells = serializers.ListField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.FloatField())),
        help_text="rows × cols boxes [left, top, right, bottom], row by row.",
    )


class AnalysisDetailSerializer(AnalysisSerializer):
    grid = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()

    class Meta(AnalysisSerializer.Meta):
        fields = [*AnalysisSerializer.Meta.fields, "grid", "results"]

    @extend_schema_field(GridSerializer(allow_null=True))
    def get_grid(self, analysis: Analysis) -> dict | None:
        embedding = selectors.get_embedding(analysis)
        return embedding.grid() if embedding else None

    @extend_schema_field(HitSerializer(many=True))
    def get_results(self, analysis: Analysis) -> list[dict]:
        results = selectors.list_results(analysis, analysis.query_kind)
        return HitSerializer(results, many=True).data


class FigureQuerySerializer(serializers.Serializer):
    """`GET /analyses/{id}/figures`: the whole image (or crop), or one cell with `cell=r,c`."""

    k = serializers.IntegerField(
        min_value=1, max_value=100, default=10, help_text="How many figures (1–100)."
    )
    cell = serializers.RegexField(
        r"^\d{1,3},\d{1,3}$",
        required=False,
        help_text="row,col of a grid cell (from 0): figures like that cell, not the image.",
    )

    def validate_cell(self, value: str) -> tuple[int, int]:
        row, col = value.split(",")
        return int(row), int(col)


class FigureTextSearchQuerySerializer(TextSearchQuerySerializer):
    k = serializers.IntegerField(
        min_value=1, max_value=100, default=10, help_text="How many figures (1–100)."
    )
