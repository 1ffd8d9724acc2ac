"""DRF serializers of the library API: every input and output has one, so that the OpenAPI
schema describes them all."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.analysis.serializers import AnalysisSerializer
from apps.corpus.serializers import WorkSummarySerializer, work_summary
from apps.library import selectors
from apps.library.models import (
    MAX_NAME,
    MAX_TAG,
    Collection,
    CollectionEntry,
    PinnedSentence,
    SavedAnalysis,
    ShareLink,
)
from apps.library.services import CITATION_STYLES


class CellField(serializers.ListField):
    """A grid cell as [row, col]; null for the whole image (or crop)."""

    child = serializers.IntegerField(min_value=0, max_value=1000)

    def __init__(self, **kwargs) -> None:
        super().__init__(min_length=2, max_length=2, allow_null=True, **kwargs)


class TagsField(serializers.ListField):
    child = serializers.CharField(max_length=MAX_TAG)

    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=20, **kwargs)


def _cell(row: int | None, col: int | None) -> list[int] | None:
    return None if row is None else [row, col]


class SavedAnalysisCreateSerializer(serializers.Serializer):
    analysis = serializers.UUIDField(help_text="One of your analyses.")
    name = serializers.CharField(max_length=MAX_NAME)
    notes = serializers.CharField(required=False, default="", allow_blank=True)
    tags = TagsField(required=False, default=list)
    cell = CellField(required=False, default=None, help_text="The grid cell to reopen on.")


class SavedAnalysisUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_NAME, required=False)
    notes = serializers.CharField(required=False, allow_blank=True)
    tags = TagsField(required=False)
    cell = CellField(required=False)


class SavedAnalysisQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=200,
        help_text="Searches names, notes, tags, pinned sentences and annotations.",
    )
    tag = serializers.CharField(required=False, default="", allow_blank=True, max_length=MAX_TAG)
    model = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=32, help_text="A model key."
    )


class PinSerializer(serializers.ModelSerializer):
    sentence_id = serializers.CharField()
    text = serializers.CharField(source="sentence.text")
    work = serializers.SerializerMethodField()
    cell = serializers.SerializerMethodField()

    class Meta:
        model = PinnedSentence
        fields = ["id", "sentence_id", "text", "work", "cell", "annotation", "created_at"]

    @extend_schema_field(WorkSummarySerializer)
    def get_work(self, pin: PinnedSentence) -> dict:
        return work_summary(pin.sentence.work)

    @extend_schema_field(CellField())
    def get_cell(self, pin: PinnedSentence) -> list[int] | None:
        return _cell(pin.cell_row, pin.cell_col)


class PinCreateSerializer(serializers.Serializer):
    sentence_id = serializers.CharField(max_length=48)
    cell = CellField(
        required=False,
        default=None,
        help_text="The grid cell it was ranked for; null: the whole image (or crop).",
    )
    annotation = serializers.CharField(required=False, default="", allow_blank=True)


class PinUpdateSerializer(serializers.Serializer):
    annotation = serializers.CharField(allow_blank=True)


class SavedAnalysisSerializer(serializers.ModelSerializer):
    analysis = AnalysisSerializer()
    cell = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField(
        help_text="The analysis page as saved: model, filters and selected cell."
    )
    pin_count = serializers.SerializerMethodField()

    class Meta:
        model = SavedAnalysis
        fields = [
            "id",
            "name",
            "notes",
            "tags",
            "cell",
            "page_url",
            "pin_count",
            "analysis",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(CellField())
    def get_cell(self, saved: SavedAnalysis) -> list[int] | None:
        return _cell(saved.cell_row, saved.cell_col)

    def get_page_url(self, saved: SavedAnalysis) -> str:
        return self.context["request"].build_absolute_uri(selectors.saved_analysis_url(saved))

    def get_pin_count(self, saved: SavedAnalysis) -> int:
        return saved.pins.count()


class SavedAnalysisDetailSerializer(SavedAnalysisSerializer):
    pins = serializers.SerializerMethodField()

    class Meta(SavedAnalysisSerializer.Meta):
        fields = [*SavedAnalysisSerializer.Meta.fields, "pins"]

    @extend_schema_field(PinSerializer(many=True))
    def get_pins(self, saved: SavedAnalysis) -> list[dict]:
        return PinSerializer(selectors.list_pins(saved), many=True).data


class CollectionCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_NAME)
    description = serializers.CharField(required=False, default="", allow_blank=True)


class CollectionUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_NAME, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class EntrySerializer(serializers.ModelSerializer):
    work = serializers.SerializerMethodField()
    sentence_id = serializers.CharField(allow_null=True)
    sentence_text = serializers.SerializerMethodField()

    class Meta:
        model = CollectionEntry
        fields = ["id", "position", "work", "sentence_id", "sentence_text", "added_at"]

    @extend_schema_field(WorkSummarySerializer)
    def get_work(self, entry: CollectionEntry) -> dict:
        return work_summary(entry.work)

    def get_sentence_text(self, entry: CollectionEntry) -> str | None:
        return entry.sentence.text if entry.sentence is not None else None


class EntryCreateSerializer(serializers.Serializer):
    work_id = serializers.CharField(max_length=32, required=False)
    sentence_id = serializers.CharField(max_length=48, required=False)

    def validate(self, data: dict) -> dict:
        if ("work_id" in data) == ("sentence_id" in data):
            raise serializers.ValidationError("Give either work_id or sentence_id.")
        return data


class EntryMoveSerializer(serializers.Serializer):
    position = serializers.IntegerField(
        min_value=0, max_value=1_000_000, help_text="Where the entry goes, 0 first."
    )


class CollectionSerializer(serializers.ModelSerializer):
    entry_count = serializers.SerializerMethodField()

    class Meta:
        model = Collection
        fields = ["id", "name", "description", "entry_count", "created_at", "updated_at"]

    def get_entry_count(self, collection: Collection) -> int:
        return collection.entries.count()


class CollectionDetailSerializer(CollectionSerializer):
    entries = serializers.SerializerMethodField()

    class Meta(CollectionSerializer.Meta):
        fields = [*CollectionSerializer.Meta.fields, "entries"]

    @extend_schema_field(EntrySerializer(many=True))
    def get_entries(self, collection: Collection) -> list[dict]:
        return EntrySerializer(selectors.list_entries(collection), many=True).data


class ShareCreateSerializer(serializers.Serializer):
    collection = serializers.UUIDField(required=False, help_text="One of your collections.")
    saved_analysis = serializers.UUIDField(required=False, help_text="One of your saved analyses.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate(self, data: dict) -> dict:
        if ("collection" in data) == ("saved_analysis" in data):
            raise serializers.ValidationError("Give either collection or saved_analysis.")
        return data


class ShareLinkSerializer(serializers.ModelSerializer):
    collection = serializers.UUIDField(source="collection_id", allow_null=True)
    saved_analysis = serializers.UUIDField(source="saved_id", allow_null=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ShareLink
        fields = [
            "id",
            "prefix",
            "collection",
            "saved_analysis",
            "active",
            "created_at",
            "expires_at",
            "revoked_at",
        ]

    def get_active(self, link: ShareLink) -> bool:
        return selectors.share_link_active(link)


class ShareLinkCreatedSerializer(ShareLinkSerializer):
    token = serializers.CharField(help_text="The secret, shown this once; only its digest is kept.")

    class Meta(ShareLinkSerializer.Meta):
        fields = [*ShareLinkSerializer.Meta.fields, "token"]


class CitationQuerySerializer(serializers.Serializer):
    style = serializers.ChoiceField(choices=sorted(CITATION_STYLES), default="chicago-author-date")


class CitationSerializer(serializers.Serializer):
    work_id = serializers.CharField()
    style = serializers.CharField()
    text = serializers.CharField(help_text="Plain text.")
    html = serializers.CharField(help_text="HTML with every value escaped (italics as <i>).")
