"""Reads of the library: saved analyses and their pins, collections, share links, and the
files under the analysis upload folders that no row names."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Q, QuerySet, TextField
from django.db.models.fields.files import FileField
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from apps.analysis.models import Analysis, Heatmap
from apps.analysis.selectors import build_view_query
from apps.core.errors import NotFoundError
from apps.library.models import (
    Collection,
    CollectionEntry,
    PinnedSentence,
    SavedAnalysis,
    ShareLink,
)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def list_saved_analyses(
    user, *, q: str = "", tag: str = "", model: str = ""
) -> QuerySet[SavedAnalysis]:
    """A user's saved analyses, most recently changed first; `q` searches name, notes, tags,
    pinned sentences and annotations (case-insensitively), `tag` and `model` filter."""
    queryset = SavedAnalysis.objects.filter(analysis__owner=user).select_related("analysis")
    if tag:
        queryset = queryset.filter(tags__contains=[tag.strip().lower()])
    if model:
        queryset = queryset.filter(analysis__model_key=model)
    if q.strip():
        text = q.strip()
        pinned = PinnedSentence.objects.filter(
            Q(sentence__text__icontains=text) | Q(annotation__icontains=text)
        ).values("saved_id")
        queryset = queryset.annotate(tag_text=Cast("tags", TextField())).filter(
            Q(name__icontains=text)
            | Q(notes__icontains=text)
            | Q(tag_text__icontains=text)
            | Q(pk__in=pinned)
        )
    return queryset


def get_saved_analysis(user, pk) -> SavedAnalysis | None:
    return list_saved_analyses(user).filter(pk=pk).first()


def get_saved_for_analysis(analysis: Analysis) -> SavedAnalysis | None:
    """The saved item of an analysis, if it is saved (the analysis page's Save button)."""
    return SavedAnalysis.objects.filter(analysis=analysis).first()


def list_tags(user) -> list[str]:
    """Every tag the user has given a saved analysis, sorted: the library's tag filter."""
    tags = SavedAnalysis.objects.filter(analysis__owner=user).values_list("tags", flat=True)
    return sorted({tag for row in tags for tag in row})


def list_pins(saved: SavedAnalysis) -> QuerySet[PinnedSentence]:
    return saved.pins.select_related("sentence__work").order_by("created_at", "id")


def get_pin(saved: SavedAnalysis, sentence_id: str, cell: tuple[int, int] | None):
    """The pin of a sentence at one place (a cell, or the whole image or crop), if any."""
    row, col = cell if cell else (None, None)
    return saved.pins.filter(sentence_id=sentence_id, cell_row=row, cell_col=col).first()


def get_own_pin(user, pin_id: int) -> PinnedSentence | None:
    return (
        PinnedSentence.objects.filter(pk=pin_id, saved__analysis__owner=user)
        .select_related("saved__analysis")
        .first()
    )


def list_pinned_sentence_ids(saved: SavedAnalysis | None, cell: tuple[int, int] | None) -> set:
    """The sentences pinned at one place of a saved analysis: the cards shown there that say
    "Pinned"."""
    if saved is None:
        return set()
    row, col = cell if cell else (None, None)
    return set(saved.pins.filter(cell_row=row, cell_col=col).values_list("sentence_id", flat=True))


def analysis_page_url(analysis: Analysis, cell: tuple[int, int] | None = None) -> str:
    """The analysis page under the analysis's model and filters, showing `cell` (the page
    reads `cell=row,col`) or the whole image (or crop)."""
    query = build_view_query(analysis)
    if cell is not None:
        query["cell"] = f"{cell[0]},{cell[1]}"
    return reverse("analysis:page", kwargs={"pk": analysis.pk}) + "?" + query.urlencode()


def saved_analysis_url(saved: SavedAnalysis) -> str:
    """Reopening a saved analysis: its page with the cell that was selected when saved."""
    return analysis_page_url(saved.analysis, saved.cell)


def list_collections(user) -> QuerySet[Collection]:
    return Collection.objects.filter(owner=user)


def get_collection(user, pk) -> Collection | None:
    """The user's collection `pk`, or None; also for a `pk` that is no UUID (a form field
    holds any text, and the query would end in a ValidationError, a 500)."""
    try:
        pk = uuid.UUID(str(pk))
    except ValueError:
        return None
    return list_collections(user).filter(pk=pk).first()


def list_entries(collection: Collection) -> QuerySet[CollectionEntry]:
    return collection.entries.select_related("work", "sentence").order_by("position")


def list_share_links(user) -> QuerySet[ShareLink]:
    return ShareLink.objects.filter(owner=user).select_related("collection", "saved")


def share_link_active(link: ShareLink) -> bool:
    return link.revoked_at is None and (link.expires_at is None or link.expires_at > timezone.now())


@dataclass(frozen=True)
class SharedItem:
    """What a share page shows: one collection with its entries, or one saved analysis with
    its pins (and the analysis, for its image and page state)."""

    link: ShareLink
    collection: Collection | None
    entries: list[CollectionEntry]
    saved: SavedAnalysis | None
    pins: list[PinnedSentence]

    @property
    def kind(self) -> str:
        return "collection" if self.collection is not None else "saved_analysis"

    @property
    def title(self) -> str:
        return self.collection.name if self.collection is not None else self.saved.name


def get_shared_item(token: str) -> SharedItem:
    """The item a share token opens; an unknown, revoked or expired token is refused alike,
    so a refusal tells nothing about which it was."""
    link = (
        ShareLink.objects.filter(digest=token_digest(token))
        .select_related("collection", "saved__analysis")
        .first()
    )
    if link is None or not share_link_active(link):
        raise NotFoundError("not_found", "There is no such shared item, or it is no longer shared.")
    if link.collection is not None:
        return SharedItem(link, link.collection, list(list_entries(link.collection)), None, [])
    return SharedItem(link, None, [], link.saved, list(list_pins(link.saved)))


def _upload_roots() -> list[str]:
    """The folders under MEDIA_ROOT that analyses and heat maps store files in: the fixed
    part of each file field's `upload_to` ("analyses/%Y/%m/" → "analyses"), outermost only."""
    prefixes = set()
    for model in (Analysis, Heatmap):
        for model_field in model._meta.get_fields():
            if isinstance(model_field, FileField) and isinstance(model_field.upload_to, str):
                fixed = model_field.upload_to.split("%")[0].strip("/")
                prefixes.add(fixed.split("/")[0])
    return sorted(prefixes)


def _referenced_files() -> set[str]:
    names: set[str] = set()
    for model in (Analysis, Heatmap):
        fields = [f.name for f in model._meta.get_fields() if isinstance(f, FileField)]
        for row in model.objects.values_list(*fields):
            names.update(name for name in row if name)
    return names


@dataclass(frozen=True)
class OrphanedFiles:
    media_root: Path
    roots: list[str]
    scanned: int
    paths: list[Path]

    @property
    def bytes(self) -> int:
        return sum(path.stat().st_size for path in self.paths if path.exists())


def list_orphaned_files(min_age_seconds: float = 3600) -> OrphanedFiles:
    """Files under the analysis upload folders that no analysis or heat-map row names.

    Files younger than `min_age_seconds` are left out: an upload's files are written before
    its row commits, and a file being stored now is no orphan."""
    media = Path(settings.MEDIA_ROOT)
    roots = _upload_roots()
    referenced = _referenced_files()
    newest = time.time() - min_age_seconds
    scanned, orphans = 0, []
    for root in roots:
        folder = media / root
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            scanned += 1
            name = path.relative_to(media).as_posix()
            if name not in referenced and path.stat().st_mtime <= newest:
                orphans.append(path)
    return OrphanedFiles(media_root=media, roots=roots, scanned=scanned, paths=orphans)
