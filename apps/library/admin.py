"""The library in the Django admin: for looking into support questions, not for curation
(researchers edit their own library in the portal and the API)."""

from __future__ import annotations

from django.contrib import admin

from apps.library.models import (
    Collection,
    CollectionEntry,
    PinnedSentence,
    SavedAnalysis,
    ShareLink,
)


class PinInline(admin.TabularInline):
    model = PinnedSentence
    extra = 0
    raw_id_fields = ["sentence"]
    fields = ["sentence", "cell_row", "cell_col", "annotation", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(SavedAnalysis)
class SavedAnalysisAdmin(admin.ModelAdmin):
    list_display = ["name", "analysis", "tags", "updated_at"]
    search_fields = ["name", "notes", "analysis__owner__username"]
    raw_id_fields = ["analysis"]
    inlines = [PinInline]


class EntryInline(admin.TabularInline):
    model = CollectionEntry
    extra = 0
    raw_id_fields = ["work", "sentence"]
    fields = ["position", "work", "sentence", "added_at"]
    readonly_fields = ["added_at"]


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "updated_at"]
    search_fields = ["name", "description", "owner__username"]
    raw_id_fields = ["owner"]
    inlines = [EntryInline]


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = [
        "prefix",
        "owner",
        "collection",
        "saved",
        "created_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "owner__username"]
    raw_id_fields = ["owner", "collection", "saved"]
    readonly_fields = ["digest", "prefix", "created_at"]
