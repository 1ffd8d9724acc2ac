"""The library's own pages: saved analyses and collections, their share links, and the public
pages a share link opens. Thin: forms read the input, services and selectors do the work, and
an `ApplicationError` becomes a message beside the form that caused it.

Everything under /library/ is the signed-in researcher's own: another researcher's ids answer
404, as ids that do not exist do. /shared/<token>/ needs no login and reaches nothing but the
shared item: its image and exports are served under the token, never by an analysis id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.analysis import selectors as analysis_selectors
from apps.analysis import services as analysis_services
from apps.analysis.models import Analysis, ResultQuery
from apps.core.errors import ApplicationError, NotFoundError
from apps.core.files import stored_file_response
from apps.corpus.selectors import list_card_works
from apps.engine.config import model_label
from apps.library import selectors, services
from apps.library.forms import (
    CollectionForm,
    LibrarySearchForm,
    MoveForm,
    SavedAnalysisForm,
    ShareForm,
)
from apps.library.models import Collection, SavedAnalysis, ShareLink

LIBRARY_PAGE_SIZE = 12


@dataclass(frozen=True)
class ShareRow:
    """A share link as its owner's list shows it."""

    link: ShareLink
    state: str  # "active", "expired" or "revoked"


def _share_rows(links) -> list[ShareRow]:
    now = timezone.now()
    rows = []
    for link in links:
        if link.revoked_at is not None:
            state = "revoked"
        elif link.expires_at is not None and link.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        rows.append(ShareRow(link, state))
    return rows


def _share_context(links, share_form: ShareForm | None, new_share_url: str) -> dict:
    """What `library/_shares.html` shows of one item's share links."""
    return {
        "share_form": share_form or ShareForm(),
        "shares": _share_rows(links),
        "new_share_url": new_share_url,
    }


def _create_share(request: HttpRequest, page: Callable[..., HttpResponse], **target):
    """Create a share link to `target` (collection= or saved=) and render the item's `page`
    with the link's URL: this response is the only place it appears, since only the token's
    digest is stored (a redirect would have to carry the token in the session)."""
    form = ShareForm(request.POST)
    if form.is_valid():
        try:
            _link, token = services.create_share_link(
                request.user, expires_at=form.expires_at(), **target
            )
        except ApplicationError as error:
            form.add_error("expires", error.sentence)
        else:
            url = request.build_absolute_uri(reverse("library:shared", kwargs={"token": token}))
            return page(new_share_url=url)
    return page(share_form=form, status=400)


def _attachment(export: services.Export) -> HttpResponse:
    response = HttpResponse(export.text, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


def _owned_saved(request: HttpRequest, pk) -> SavedAnalysis:
    saved = selectors.get_saved_analysis(request.user, pk)
    if saved is None:
        raise Http404("You have no such saved analysis.")
    return saved


def _owned_collection(request: HttpRequest, pk) -> Collection:
    collection = selectors.get_collection(request.user, pk)
    if collection is None:
        raise Http404("You have no such collection.")
    return collection


# The library page


def _library(request: HttpRequest, collection_form: CollectionForm, status: int = 200):
    search = LibrarySearchForm(request.GET or None, tags=selectors.list_tags(request.user))
    criteria = search.criteria()
    saved = (
        selectors.list_saved_analyses(request.user, **criteria)
        .annotate(pin_count=Count("pins", distinct=True))
        # An aggregate drops the model's default ordering; the pages need a stable one.
        .order_by(*SavedAnalysis._meta.ordering, "pk")
        .prefetch_related("analysis__topics", "analysis__creators")
    )
    page = Paginator(saved, LIBRARY_PAGE_SIZE).get_page(request.GET.get("page"))
    for item in page.object_list:
        item.reopen_url = selectors.saved_analysis_url(item)
        item.model_label = model_label(item.analysis.model_key)
    query = request.GET.copy()
    query.pop("page", None)
    collections = (
        selectors.list_collections(request.user)
        .annotate(entry_count=Count("entries", distinct=True))
        .order_by(*Collection._meta.ordering, "pk")
    )
    return render(
        request,
        "library/library.html",
        {
            "search": search,
            "searching": any(criteria.values()),
            "page": page,
            "page_query": query.urlencode(),
            "has_saved": selectors.list_saved_analyses(request.user).exists(),
            "collections": collections,
            "collection_form": collection_form,
        },
        status=status,
    )


@require_GET
def library(request: HttpRequest) -> HttpResponse:
    return _library(request, CollectionForm())


@require_POST
def collection_create(request: HttpRequest) -> HttpResponse:
    form = CollectionForm(request.POST)
    if form.is_valid():
        try:
            collection = services.create_collection(
                request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ApplicationError as error:
            form.add_error("name", error.sentence)
        else:
            messages.success(request, f"The collection “{collection.name}” is created.")
            return redirect("library:collection", pk=collection.pk)
    return _library(request, form, status=400)


# A saved analysis


def _saved_page(
    request: HttpRequest,
    saved: SavedAnalysis,
    *,
    form: SavedAnalysisForm | None = None,
    share_form: ShareForm | None = None,
    new_share_url: str = "",
    status: int = 200,
) -> HttpResponse:
    if form is None:
        form = SavedAnalysisForm(
            initial={"name": saved.name, "notes": saved.notes, "tags": ", ".join(saved.tags)}
        )
    links = selectors.list_share_links(request.user).filter(saved=saved)
    return render(
        request,
        "library/saved.html",
        {
            "saved": saved,
            "analysis": saved.analysis,
            "model_label": model_label(saved.analysis.model_key),
            "reopen_url": selectors.saved_analysis_url(saved),
            "pins": selectors.list_pins(saved),
            "form": form,
            **_share_context(links, share_form, new_share_url),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def saved_edit(request: HttpRequest, pk) -> HttpResponse:
    """Rename, describe and retag a saved analysis; its share links and exports."""
    saved = _owned_saved(request, pk)
    if request.method == "GET":
        return _saved_page(request, saved)
    form = SavedAnalysisForm(request.POST)
    if form.is_valid():
        try:
            services.update_saved_analysis(
                saved,
                name=form.cleaned_data["name"],
                notes=form.cleaned_data["notes"],
                tags=form.cleaned_data["tags"],
            )
        except ApplicationError as error:
            form.add_error("tags" if error.code == "bad_tags" else "name", error.sentence)
        else:
            messages.success(request, f"“{saved.name}” is saved.")
            return redirect("library:saved", pk=saved.pk)
    return _saved_page(request, saved, form=form, status=400)


@require_POST
def saved_unsave(request: HttpRequest, pk) -> HttpResponse:
    saved = _owned_saved(request, pk)
    services.unsave_analysis(saved)
    messages.success(
        request,
        f"“{saved.name}” is no longer in your library; the analysis stays in your history.",
    )
    return redirect("library:index")


@require_GET
def saved_export(request: HttpRequest, pk, fmt: str) -> HttpResponse:
    saved = _owned_saved(request, pk)
    try:
        export = services.export_saved_analysis(
            saved, fmt, base_url=request.build_absolute_uri("/")
        )
    except NotFoundError:
        raise Http404("There is no such export format.") from None
    return _attachment(export)


@never_cache
@require_POST
def saved_share(request: HttpRequest, pk) -> HttpResponse:
    saved = _owned_saved(request, pk)
    return _create_share(request, functools.partial(_saved_page, request, saved), saved=saved)


# A collection


def _collection_page(
    request: HttpRequest,
    collection: Collection,
    *,
    form: CollectionForm | None = None,
    share_form: ShareForm | None = None,
    new_share_url: str = "",
    status: int = 200,
) -> HttpResponse:
    if form is None:
        form = CollectionForm(
            initial={"name": collection.name, "description": collection.description}
        )
    entries = list(selectors.list_entries(collection))
    moved = request.GET.get("moved", "")
    direction = request.GET.get("dir", "")
    for index, entry in enumerate(entries):
        entry.can_move_up = index > 0
        entry.can_move_down = index < len(entries) - 1
        entry.focus = ""
        if str(entry.pk) == moved:
            # After a move the focus returns to the button pressed, or to the other one
            # where the entry has reached the top or the bottom.
            wanted = direction if direction in ("up", "down") else "up"
            possible = entry.can_move_up if wanted == "up" else entry.can_move_down
            entry.focus = wanted if possible else ("down" if wanted == "up" else "up")
    links = selectors.list_share_links(request.user).filter(collection=collection)
    return render(
        request,
        "library/collection.html",
        {
            "collection": collection,
            "entries": entries,
            "form": form,
            **_share_context(links, share_form, new_share_url),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def collection_page(request: HttpRequest, pk) -> HttpResponse:
    """A collection's entries in order; a POST renames or describes it."""
    collection = _owned_collection(request, pk)
    if request.method == "GET":
        return _collection_page(request, collection)
    form = CollectionForm(request.POST)
    if form.is_valid():
        try:
            services.update_collection(
                collection,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ApplicationError as error:
            form.add_error("name", error.sentence)
        else:
            messages.success(request, "The collection is saved.")
            return redirect("library:collection", pk=collection.pk)
    return _collection_page(request, collection, form=form, status=400)


@require_POST
def collection_delete(request: HttpRequest, pk) -> HttpResponse:
    collection = _owned_collection(request, pk)
    services.delete_collection(collection)
    messages.success(request, f"The collection “{collection.name}” is deleted.")
    return redirect("library:index")


def _owned_entry(request: HttpRequest, pk, entry_id: int):
    collection = _owned_collection(request, pk)
    return get_object_or_404(selectors.list_entries(collection), pk=entry_id)


@require_POST
def entry_move(request: HttpRequest, pk, entry_id: int) -> HttpResponse:
    """One place up or down; the page comes back with the focus on the button pressed."""
    entry = _owned_entry(request, pk, entry_id)
    form = MoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose to move the entry up or down.")
        return redirect("library:collection", pk=pk)
    try:
        services.move_entry(entry, entry.position + form.step)
    except ApplicationError as error:
        messages.error(request, error.sentence)
    url = reverse("library:collection", kwargs={"pk": pk})
    return redirect(f"{url}?moved={entry.pk}&dir={form.cleaned_data['direction']}")


@require_POST
def entry_remove(request: HttpRequest, pk, entry_id: int) -> HttpResponse:
    entry = _owned_entry(request, pk, entry_id)
    label = entry.sentence.text if entry.sentence is not None else entry.work.display_title
    services.remove_entry(entry)
    messages.success(request, f"“{label[:80]}” is removed from the collection.")
    return redirect("library:collection", pk=pk)


@require_GET
def collection_export(request: HttpRequest, pk, fmt: str) -> HttpResponse:
    collection = _owned_collection(request, pk)
    try:
        export = services.export_collection(collection, fmt)
    except NotFoundError:
        raise Http404("There is no such export format.") from None
    return _attachment(export)


@never_cache
@require_POST
def collection_share(request: HttpRequest, pk) -> HttpResponse:
    collection = _owned_collection(request, pk)
    page = functools.partial(_collection_page, request, collection)
    return _create_share(request, page, collection=collection)


@require_POST
def share_revoke(request: HttpRequest, pk) -> HttpResponse:
    link = get_object_or_404(selectors.list_share_links(request.user), pk=pk)
    services.revoke_share_link(link)
    messages.success(request, f"The link {link.prefix}… is revoked: it opens nothing any more.")
    if link.collection_id is not None:
        return redirect("library:collection", pk=link.collection_id)
    return redirect("library:saved", pk=link.saved_id)


# The public pages of a share link


def shared_response(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A public view of a share link: no login; the token in the URL goes to no other site
    (no Referer), search engines keep nothing, and a token that opens nothing is a 404 page
    with the same headers."""

    @login_not_required
    @require_GET
    @functools.wraps(view)
    def wrapped(request: HttpRequest, token: str, **kwargs) -> HttpResponse:
        try:
            item = selectors.get_shared_item(token)
            response = view(request, item, token, **kwargs)
        except NotFoundError:
            response = render(request, "library/shared_missing.html", status=404)
        response["Referrer-Policy"] = "no-referrer"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapped


def _shared_cards(saved: SavedAnalysis) -> list[analysis_selectors.Card]:
    """The ranking the saved view shows (its cell's, or the image's or crop's) as the
    analysis page showed it: the stored one, so that a public page runs no vector search;
    ranked as the analysis page ranks it only where none is stored (a cell saved through the
    API and never opened). None while the analysis has not finished."""
    analysis = saved.analysis
    if analysis.status != Analysis.Status.DONE:
        return []
    query = ResultQuery.CELL if saved.cell is not None else analysis.query_kind
    stored = analysis_selectors.list_results(analysis, query, saved.cell)[
        : settings.ANALYSIS_RESULTS
    ]
    if stored:
        return [
            analysis_selectors.Card(
                result.rank, result.score, result.sentence_id, result.sentence.text,
                result.sentence.work,
            )
            for result in stored
        ]  # fmt: skip
    try:
        hits = analysis_services.rank_for_view(
            analysis, cell=saved.cell, k=settings.ANALYSIS_RESULTS
        )
    except ApplicationError:
        return []
    return analysis_selectors.build_cards(hits, list_card_works(hits))


@shared_response
def shared(request: HttpRequest, item: selectors.SharedItem, token: str) -> HttpResponse:
    context: dict = {"item": item, "token": token}
    if item.saved is not None:
        context["analysis"] = item.saved.analysis
        context["model_label"] = model_label(item.saved.analysis.model_key)
        context["cards"] = _shared_cards(item.saved)
    return render(request, "library/shared.html", context)


@shared_response
def shared_image(request: HttpRequest, item: selectors.SharedItem, token: str) -> FileResponse:
    if item.saved is None:
        raise NotFoundError("not_found", "A shared collection has no image.")
    return stored_file_response(item.saved.analysis.image)


@shared_response
def shared_export(
    request: HttpRequest, item: selectors.SharedItem, token: str, fmt: str
) -> HttpResponse:
    return _attachment(
        services.export_shared_item(item, fmt, base_url=request.build_absolute_uri("/"))
    )
