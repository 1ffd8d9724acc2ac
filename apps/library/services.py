"""Writes of the library: saving analyses and pinning their sentences, collections and their
order, share links; and the exports and citations built from them.

Adding what is already there (a pin, a collection entry) is a no-op that returns the existing
row, so that a button pressed twice does no harm; callers learn which it was from `created`.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from citeproc import (
    Citation,
    CitationItem,
    CitationStylesBibliography,
    CitationStylesStyle,
    formatter,
)
from citeproc.source.json import CiteProcJSON
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from apps.analysis.models import Analysis, AnalysisResult, ResultQuery
from apps.analysis.selectors import get_embedding
from apps.core.errors import ApplicationError, NotFoundError
from apps.corpus.models import Sentence, Work
from apps.engine.config import model_label
from apps.library import exports, selectors
from apps.library.models import (
    MAX_NAME,
    MAX_TAG,
    Collection,
    CollectionEntry,
    PinnedSentence,
    SavedAnalysis,
    ShareLink,
)

MAX_TAGS = 20
CSL_DIR = Path(__file__).resolve().parent / "csl"
CITATION_CACHE_SECONDS = 24 * 3600
CITATION_STYLES = {
    "chicago-author-date": "chicago-author-date.csl",
    "apa": "apa.csl",
}


@dataclass(frozen=True)
class ExportFormat:
    extension: str
    content_type: str


EXPORT_FORMATS = {
    "bib": ExportFormat("bib", "application/x-bibtex; charset=utf-8"),
    "ris": ExportFormat("ris", "application/x-research-info-systems; charset=utf-8"),
    "json": ExportFormat("json", "application/vnd.citationstyles.csl+json; charset=utf-8"),
}


@dataclass(frozen=True)
class Export:
    text: str
    filename: str
    content_type: str


@dataclass(frozen=True)
class FormattedCitation:
    style: str
    text: str
    html: str = ""


class _Unchanged:
    """The default of an update's arguments that may also be set to None."""


UNCHANGED = _Unchanged()


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not 0 < len(name) <= MAX_NAME:
        raise ApplicationError("bad_name", f"Give a name of 1 to {MAX_NAME} characters.")
    return name


def _tags(tags: Iterable[str]) -> list[str]:
    """Tags trimmed, lower-cased and without repeats, in the order given."""
    cleaned = list(dict.fromkeys(" ".join(tag.split()).lower() for tag in tags if tag.strip()))
    if len(cleaned) > MAX_TAGS or any(len(tag) > MAX_TAG for tag in cleaned):
        raise ApplicationError(
            "bad_tags", f"Give at most {MAX_TAGS} tags of at most {MAX_TAG} characters each."
        )
    return cleaned


def _cell(analysis: Analysis, cell: Sequence[int] | None) -> tuple[int, int] | None:
    """A grid cell of the analysis's current grid, or None for the whole image (or crop)."""
    if cell is None:
        return None
    embedding = get_embedding(analysis)
    if embedding is None:
        raise ApplicationError(
            "analysis_not_ready", "The analysis has no grid yet; choose a cell once it is done."
        )
    row, col = cell
    if not (0 <= row < embedding.grid_rows and 0 <= col < embedding.grid_cols):
        raise ApplicationError(
            "bad_cell",
            f"The grid is {embedding.grid_rows} × {embedding.grid_cols}; "
            f"cell ({row}, {col}) is outside it.",
        )
    return row, col


def save_analysis(
    user,
    analysis: Analysis,
    *,
    name: str,
    notes: str = "",
    tags: Iterable[str] = (),
    cell: Sequence[int] | None = None,
) -> SavedAnalysis:
    """Save one of the user's own analyses to their library (once: a second save is refused,
    since it would have to choose between two names)."""
    if analysis.owner_id != user.pk:
        raise NotFoundError("not_found", "There is no such analysis.")
    row_col = _cell(analysis, cell)
    try:
        with transaction.atomic():
            return SavedAnalysis.objects.create(
                analysis=analysis,
                name=_name(name),
                notes=notes,
                tags=_tags(tags),
                cell_row=row_col[0] if row_col else None,
                cell_col=row_col[1] if row_col else None,
            )
    except IntegrityError:
        raise ApplicationError(
            "already_saved", "This analysis is in your library already; edit it there."
        ) from None


def update_saved_analysis(
    saved: SavedAnalysis,
    *,
    name: str | None = None,
    notes: str | None = None,
    tags: Iterable[str] | None = None,
    cell: Sequence[int] | _Unchanged | None = UNCHANGED,
) -> SavedAnalysis:
    """Rename, describe, retag, or change the cell shown when it is reopened."""
    if name is not None:
        saved.name = _name(name)
    if notes is not None:
        saved.notes = notes
    if tags is not None:
        saved.tags = _tags(tags)
    if not isinstance(cell, _Unchanged):
        row_col = _cell(saved.analysis, cell)
        saved.cell_row, saved.cell_col = row_col if row_col else (None, None)
    saved.save()
    return saved


def unsave_analysis(saved: SavedAnalysis) -> None:
    """Take the analysis out of the library, with its pins and share links; the analysis
    itself stays in the history (`apps.analysis.services.delete_analysis` deletes it, and
    its saved item with it)."""
    saved.delete()


def pin_sentence(
    saved: SavedAnalysis,
    *,
    sentence_id: str,
    cell: Sequence[int] | None = None,
    annotation: str = "",
) -> tuple[PinnedSentence, bool]:
    """Pin a sentence ranked for the whole image (or crop), or for a grid cell, of the saved
    analysis. Returns the pin and whether it is new: pinning a pinned sentence again keeps
    the first pin as it is."""
    analysis = saved.analysis
    row_col = _cell(analysis, cell)
    row, col = row_col if row_col else (None, None)
    query = ResultQuery.CELL if row_col else analysis.query_kind
    ranked = AnalysisResult.objects.filter(
        analysis=analysis, query=query, cell_row=row, cell_col=col, sentence_id=sentence_id
    ).exists()
    if not ranked:
        where = f"cell ({row}, {col})" if row_col else "the analysis"
        raise ApplicationError(
            "not_in_results", f"The sentence {sentence_id!r} is not among the results of {where}."
        )
    with transaction.atomic():
        return PinnedSentence.objects.get_or_create(
            saved=saved,
            sentence_id=sentence_id,
            cell_row=row,
            cell_col=col,
            defaults={"annotation": annotation},
        )


def set_sentence_pinned(
    user, analysis: Analysis, *, sentence_id: str, cell: Sequence[int] | None, pinned: bool
) -> None:
    """Pin or unpin a result sentence of one of the user's analyses at one place, as the
    analysis page's Pin button does: pinning saves the analysis (under its file name) first
    when it is not in the library yet; unpinning what is not pinned changes nothing."""
    saved = selectors.get_saved_for_analysis(analysis)
    if pinned:
        if saved is None:
            saved = save_analysis(
                user, analysis, name=analysis.original_filename or "Untitled painting"
            )
        pin_sentence(saved, sentence_id=sentence_id, cell=cell)
    elif saved is not None:
        pin = selectors.get_pin(saved, sentence_id, tuple(cell) if cell else None)
        if pin is not None:
            unpin_sentence(pin)


def update_pin(pin: PinnedSentence, *, annotation: str) -> PinnedSentence:
    pin.annotation = annotation
    pin.save(update_fields=["annotation"])
    return pin


def unpin_sentence(pin: PinnedSentence) -> None:
    pin.delete()


def create_collection(owner, *, name: str, description: str = "") -> Collection:
    return Collection.objects.create(owner=owner, name=_name(name), description=description)


def update_collection(
    collection: Collection, *, name: str | None = None, description: str | None = None
) -> Collection:
    if name is not None:
        collection.name = _name(name)
    if description is not None:
        collection.description = description
    collection.save()
    return collection


def delete_collection(collection: Collection) -> None:
    collection.delete()


def _touch(collection: Collection) -> None:
    Collection.objects.filter(pk=collection.pk).update(updated_at=timezone.now())


@transaction.atomic
def add_to_collection(
    collection: Collection, *, work_id: str | None = None, sentence_id: str | None = None
) -> tuple[CollectionEntry, bool]:
    """Add a published work, or a published sentence (with its work), at the end. Returns the
    entry and whether it is new: what is in the collection already stays where it is."""
    if (work_id is None) == (sentence_id is None):
        raise ApplicationError("bad_entry", "Give either a work or a sentence to add.")
    # The collection row locked: concurrent adds take positions one after the other.
    Collection.objects.select_for_update().filter(pk=collection.pk).first()
    if sentence_id is not None:
        sentence = Sentence.objects.filter(
            pk=sentence_id, published=True, work__published=True
        ).first()
        if sentence is None:
            raise NotFoundError("unknown_sentence", f"There is no sentence {sentence_id!r}.")
        existing = collection.entries.filter(sentence=sentence).first()
        work_id = sentence.work_id
    else:
        sentence = None
        if not Work.objects.filter(pk=work_id, published=True).exists():
            raise NotFoundError("unknown_work", f"There is no work {work_id!r}.")
        existing = collection.entries.filter(work_id=work_id, sentence=None).first()
    if existing is not None:
        return existing, False
    last = collection.entries.order_by("-position").values_list("position", flat=True).first()
    entry = CollectionEntry.objects.create(
        collection=collection,
        position=0 if last is None else last + 1,
        work_id=work_id,
        sentence=sentence,
    )
    _touch(collection)
    return entry, True


def _renumber(collection: Collection) -> None:
    """Positions 0, 1, 2, … in the present order (they may have gaps after a work or
    sentence of the corpus was deleted)."""
    for index, entry in enumerate(collection.entries.order_by("position", "id")):
        if entry.position != index:
            CollectionEntry.objects.filter(pk=entry.pk).update(position=index)


@transaction.atomic
def move_entry(entry: CollectionEntry, position: int) -> CollectionEntry:
    """Move an entry to `position` (0 first), shifting the ones between; moving it one up or
    down is `position ± 1`."""
    collection = entry.collection
    Collection.objects.select_for_update().filter(pk=collection.pk).first()
    _renumber(collection)
    count = collection.entries.count()
    if not 0 <= position < count:
        raise ApplicationError(
            "bad_position",
            f"The collection has {count} entries; give a position from 0 to {count - 1}.",
        )
    entry.refresh_from_db()
    current = entry.position
    if position < current:
        collection.entries.filter(position__gte=position, position__lt=current).update(
            position=F("position") + 1
        )
    elif position > current:
        collection.entries.filter(position__gt=current, position__lte=position).update(
            position=F("position") - 1
        )
    CollectionEntry.objects.filter(pk=entry.pk).update(position=position)
    entry.position = position
    _touch(collection)
    return entry


@transaction.atomic
def remove_entry(entry: CollectionEntry) -> None:
    collection = entry.collection
    Collection.objects.select_for_update().filter(pk=collection.pk).first()
    entry.delete()
    _renumber(collection)
    _touch(collection)


def create_share_link(
    owner,
    *,
    collection: Collection | None = None,
    saved: SavedAnalysis | None = None,
    expires_at: datetime | None = None,
) -> tuple[ShareLink, str]:
    """A secret read-only link to one of the owner's collections or saved analyses. Returns
    the link and its token; the token is shown this once, only its digest is stored."""
    if (collection is None) == (saved is None):
        raise ApplicationError("bad_share", "Share either a collection or a saved analysis.")
    target_owner = collection.owner_id if collection is not None else saved.analysis.owner_id
    if target_owner != owner.pk:
        raise NotFoundError("not_found", "There is no such item to share.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("bad_expiry", "A link's expiry must lie in the future.")
    token = secrets.token_urlsafe(32)
    link = ShareLink.objects.create(
        owner=owner,
        collection=collection,
        saved=saved,
        digest=selectors.token_digest(token),
        prefix=token[:8],
        expires_at=expires_at,
    )
    return link, token


def revoke_share_link(link: ShareLink) -> ShareLink:
    """Stop the link from opening anything (kept, marked revoked; revoking twice keeps the
    first time)."""
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
    return link


def _export(groups: Sequence[tuple[Work, list[exports.Quotation]]], fmt: str, stem: str) -> Export:
    """Records of works (each once, in order of first appearance) with their quotations."""
    export_format = EXPORT_FORMATS.get(fmt)
    if export_format is None:
        raise NotFoundError(
            "bad_format", f"Exports come as {', '.join('.' + f for f in EXPORT_FORMATS)}."
        )
    references = [exports.reference_for(work, quotes) for work, quotes in groups]
    exports.assign_keys(references)
    if fmt == "bib":
        text = exports.render_bibtex(references)
    elif fmt == "ris":
        text = exports.render_ris(references)
    else:
        items = [exports.csl_item(reference) for reference in references]
        text = json.dumps(items, ensure_ascii=False, indent=2) + "\n"
    filename = f"{slugify(stem) or 'library'}.{export_format.extension}"
    return Export(text=text, filename=filename, content_type=export_format.content_type)


def _grouped(pairs: Iterable[tuple[Work, exports.Quotation | None]]) -> list:
    groups: dict[str, tuple[Work, list[exports.Quotation]]] = {}
    for work, quotation in pairs:
        group = groups.setdefault(work.id, (work, []))
        if quotation is not None:
            group[1].append(quotation)
    return list(groups.values())


def export_collection(collection: Collection, fmt: str) -> Export:
    """The collection's works as `fmt` (bib, ris or json), its sentences as quotations of
    their works."""
    pairs = [
        (
            entry.work,
            exports.Quotation(entry.sentence.text, f"Sentence {entry.sentence_id}")
            if entry.sentence is not None
            else None,
        )
        for entry in selectors.list_entries(collection)
    ]
    return _export(_grouped(pairs), fmt, collection.name)


def _pin_source(saved: SavedAnalysis, pin: PinnedSentence, base_url: str) -> str:
    analysis = saved.analysis
    if pin.cell is not None:
        where = f"grid cell row {pin.cell_row}, column {pin.cell_col}"
    elif analysis.crop:
        where = "region " + ",".join(str(value) for value in analysis.crop)
    else:
        where = "whole image"
    url = base_url.rstrip("/") + selectors.analysis_page_url(analysis, pin.cell)
    return (
        f"Pinned from the analysis “{saved.name}” ({where}; {model_label(analysis.model_key)}; "
        f"sentence {pin.sentence_id}): {url}"
    )


def export_saved_analysis(saved: SavedAnalysis, fmt: str, *, base_url: str = "") -> Export:
    """The works of the pinned sentences as `fmt`, each sentence a quotation naming the
    analysis and the place it was ranked for (with the analysis page's URL under
    `base_url`, e.g. the site's address)."""
    pairs = [
        (
            pin.sentence.work,
            exports.Quotation(pin.sentence.text, _pin_source(saved, pin, base_url), pin.annotation),
        )
        for pin in selectors.list_pins(saved)
    ]
    return _export(_grouped(pairs), fmt, saved.name)


def export_shared_item(item: selectors.SharedItem, fmt: str, *, base_url: str = "") -> Export:
    if item.collection is not None:
        return export_collection(item.collection, fmt)
    return export_saved_analysis(item.saved, fmt, base_url=base_url)


@functools.cache
def _style(name: str) -> CitationStylesStyle:
    return CitationStylesStyle(str(CSL_DIR / CITATION_STYLES[name]), validate=False)


def _escaped(value):
    if isinstance(value, str):
        return html.escape(value, quote=False)
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    return value


def _render(item: dict, style: str, output) -> str:
    bibliography = CitationStylesBibliography(_style(style), CiteProcJSON([item]), output)
    bibliography.register(Citation([CitationItem(item["id"])]))
    return str(bibliography.bibliography()[0])


def format_citation_text(work: Work, style: str) -> str:
    """`format_citation(work, style).text`, cached: the same record and style always give the
    same text, and citeproc takes milliseconds per reference."""
    metadata = (work.title, work.author, work.year, work.doi, work.link, work.bibtex)
    key = f"citation:{style}:{work.pk}:{hashlib.sha256(repr(metadata).encode()).hexdigest()}"
    text = cache.get(key)
    if text is None:
        text = format_citation(work, style).text
        cache.set(key, text, CITATION_CACHE_SECONDS)
    return text


def format_citation(work: Work, style: str) -> FormattedCitation:
    """The work's reference in a CSL style (`chicago-author-date` or `apa`): as plain text,
    and as HTML whose every value is escaped (citeproc-py's HTML output escapes its own
    punctuation but passes the item's values through as they are)."""
    if style not in CITATION_STYLES:
        raise ApplicationError(
            "unknown_style",
            f"There is no citation style {style!r}; choose one of {', '.join(CITATION_STYLES)}.",
        )
    reference = exports.reference_for(work)
    exports.assign_keys([reference])
    item = exports.csl_item(reference)
    return FormattedCitation(
        style=style,
        text=_render(item, style, formatter.plain),
        html=_render(_escaped(item), style, formatter.html),
    )


def delete_orphaned_files(orphans: selectors.OrphanedFiles) -> int:
    """Delete the files `list_orphaned_files` found, and the month folders they leave empty;
    returns how many files went."""
    deleted = 0
    for path in orphans.paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        deleted += 1
    for root in orphans.roots:
        folder = orphans.media_root / root
        if not folder.is_dir():
            continue
        for directory in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
    return deleted
