"""Curation in the Django admin: search, filter, edit metadata, publish and unpublish.

Publishing goes through the services (never a plain field save), because the embeddings'
``searchable`` flags and the works' sentence counts must follow.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from apps.corpus import selectors, services
from apps.corpus.models import Creator, Sentence, Topic, Work, WorkImage


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, count: int, verb: str) -> None:
    noun = modeladmin.model._meta.verbose_name_plural
    modeladmin.message_user(request, f"{count} {noun} {verb}.", messages.SUCCESS)


@admin.action(description="Publish selected works")
def publish_works(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    count = services.set_works_published(queryset.values_list("id", flat=True), True)
    _report(modeladmin, request, count, "published")


@admin.action(description="Unpublish selected works (hidden from search)")
def unpublish_works(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    count = services.set_works_published(queryset.values_list("id", flat=True), False)
    _report(modeladmin, request, count, "unpublished")


@admin.action(description="Publish selected sentences")
def publish_sentences(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    count = services.set_sentences_published(queryset.values_list("id", flat=True), True)
    _report(modeladmin, request, count, "published")


@admin.action(description="Unpublish selected sentences (hidden from search)")
def unpublish_sentences(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    count = services.set_sentences_published(queryset.values_list("id", flat=True), False)
    _report(modeladmin, request, count, "unpublished")


class _PublishThroughServices:
    """Save a changed ``published`` box through `publish`, the rest as a plain save."""

    def publish(self, pk: str, published: bool) -> None:
        raise NotImplementedError

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        wanted = obj.published
        if change and "published" in form.changed_data:
            obj.published = not wanted
            super().save_model(request, obj, form, change)
            self.publish(obj.pk, wanted)
            obj.published = wanted
        else:
            super().save_model(request, obj, form, change)


class WorkImageInline(admin.TabularInline):
    model = WorkImage
    extra = 0
    fields = ["position", "name", "image"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Work)
class WorkAdmin(_PublishThroughServices, admin.ModelAdmin):
    list_display = ["id", "display_title", "author", "year", "published", "sentences"]
    list_filter = ["published", "creators", "topics"]
    search_fields = ["=id", "title", "author", "doi"]
    autocomplete_fields = ["creators", "topics"]
    exclude = ["markdown"]
    readonly_fields = ["source_sentence_count", "published_sentence_count"]
    actions = [publish_works, unpublish_works]
    inlines = [WorkImageInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("markdown")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "id"] if obj else list(self.readonly_fields)

    @admin.display(description="published sentences", ordering="published_sentence_count")
    def sentences(self, obj: Work) -> int:
        return obj.published_sentence_count

    def publish(self, pk: str, published: bool) -> None:
        services.set_works_published([pk], published)


@admin.register(Sentence)
class SentenceAdmin(_PublishThroughServices, admin.ModelAdmin):
    list_display = ["id", "work", "position", "short_text", "published"]
    list_filter = ["published", "work__published"]
    search_fields = ["=id", "=work__id", "text"]
    list_select_related = ["work"]
    raw_id_fields = ["work", "paragraph"]
    readonly_fields = ["context"]
    actions = [publish_sentences, unpublish_sentences]
    show_full_result_count = False  # counting 3 M rows twice per page is wasted time

    @admin.display(description="text")
    def short_text(self, obj: Sentence) -> str:
        return obj.text if len(obj.text) <= 120 else f"{obj.text[:117]}…"

    @admin.display(description="context (paragraph and neighbours)")
    def context(self, obj: Sentence) -> str:
        if not obj.pk:
            return "—"
        found = selectors.get_sentence_context(obj.pk, neighbours=3, include_unpublished=True)
        if found is None:
            return "—"
        rows = format_html_join(
            "",
            "<li{}><code>{}</code> {}</li>",
            (
                (' style="font-weight:bold"' if s.pk == obj.pk else "", s.pk, s.text)
                for s in [*found.before, found.sentence, *found.after]
            ),
        )
        paragraph = found.paragraph or "(no paragraph recorded)"
        return format_html(
            "<p><em>Paragraph:</em> {}</p><p><em>Neighbours:</em></p><ol>{}</ol>",
            paragraph,
            rows,
        )

    def publish(self, pk: str, published: bool) -> None:
        services.set_sentences_published([pk], published)


@admin.register(Creator)
class CreatorAdmin(admin.ModelAdmin):
    list_display = ["slug", "name"]
    search_fields = ["slug", "name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["slug"] if obj else []


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["id", "name"]
    list_filter = [("name", admin.EmptyFieldListFilter)]
    search_fields = ["id", "name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["id"] if obj else []
