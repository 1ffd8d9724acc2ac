"""The library's actions on other pages: "Save to library" and "Pin" on an analysis, the notes
of its pins, "Add to collection" on result cards and work pages, and
formatted citations for "Copy citation".

Thin, as every view: the library's services do the work. Each action answers the page it was
taken on — a redirect back (to `next`, a path of this site only) with a message, or for htmx
the fragment it replaces — so it works without scripts too.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.analysis import selectors as analysis_selectors
from apps.analysis.models import Analysis
from apps.core.errors import ApplicationError
from apps.corpus.models import Work
from apps.library import selectors, services
from apps.library.action_forms import AnnotationForm, CollectForm, PinForm, SaveAnalysisForm
from apps.library.models import PinnedSentence


def _own_analysis(request: HttpRequest, pk) -> Analysis:
    """One of the user's own analyses (the library is personal: staff included)."""
    return get_object_or_404(analysis_selectors.list_analyses(request.user, own=True), pk=pk)


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(target if safe and target.startswith("/") else fallback)


def _first_error(form) -> str:
    for errors in form.errors.values():
        return str(errors[0])
    return "The form was not filled in as expected."


@require_POST
def save_analysis(request: HttpRequest, pk) -> HttpResponse:
    analysis = _own_analysis(request, pk)
    page = selectors.analysis_page_url(analysis)
    form = SaveAnalysisForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return _back(request, page)
    data = form.cleaned_data
    try:
        saved = services.save_analysis(
            request.user,
            analysis,
            name=data["name"],
            notes=data["notes"],
            tags=data["tags"],
            cell=data["cell"],
        )
    except ApplicationError as error:
        messages.error(request, error.sentence)
    else:
        messages.success(request, f"Saved to your library as “{saved.name}”.")
    return _back(request, page)


@require_POST
def pin_sentence(request: HttpRequest, pk) -> HttpResponse:
    """Pin or unpin a result sentence (`services.set_sentence_pinned`); back to the card."""
    analysis = _own_analysis(request, pk)
    form = PinForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return _back(request, selectors.analysis_page_url(analysis))
    data = form.cleaned_data
    try:
        services.set_sentence_pinned(
            request.user,
            analysis,
            sentence_id=data["sentence"],
            cell=data["cell"],
            pinned=data["action"] == "pin",
        )
    except ApplicationError as error:
        messages.error(request, error.sentence)
    response = _back(request, selectors.analysis_page_url(analysis, data["cell"]))
    response["Location"] += f"#hit-{data['sentence']}"
    return response


def _own_pin(request: HttpRequest, pin_id: int) -> PinnedSentence:
    pin = selectors.get_own_pin(request.user, pin_id)
    if pin is None:
        raise Http404("There is no such pin.")
    return pin


@require_POST
def annotate_pin(request: HttpRequest, pin_id: int) -> HttpResponse:
    pin = _own_pin(request, pin_id)
    form = AnnotationForm(request.POST)
    if form.is_valid():
        services.update_pin(pin, annotation=form.cleaned_data["annotation"])
        messages.success(request, "Your note is saved.")
    else:
        messages.error(request, _first_error(form))
    response = _back(request, selectors.saved_analysis_url(pin.saved))
    response["Location"] += f"#pin-{pin.pk}"
    return response


@require_POST
def unpin(request: HttpRequest, pin_id: int) -> HttpResponse:
    pin = _own_pin(request, pin_id)
    saved = pin.saved
    services.unpin_sentence(pin)
    messages.info(request, "The sentence is no longer pinned.")
    return _back(request, selectors.saved_analysis_url(saved))


@require_POST
def add_to_collection(request: HttpRequest) -> HttpResponse:
    """ "Add to collection" from a card or a work page: into one of the user's collections or
    a new one. htmx gets the picker back with a sentence saying what happened."""
    form = CollectForm(request.POST)
    status, added_to = "", None
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["collection"] in ("", "new"):
                collection = services.create_collection(request.user, name=data["new_name"])
            else:
                collection = selectors.get_collection(request.user, data["collection"])
                if collection is None:
                    raise Http404("There is no such collection.")
            _entry, created = services.add_to_collection(
                collection,
                work_id=data["work"] or None,
                sentence_id=data["sentence"] or None,
            )
        except ApplicationError as error:
            status = error.sentence
        else:
            added_to = collection
            status = (
                f"Added to “{collection.name}”." if created else f"Already in “{collection.name}”."
            )
    else:
        status = _first_error(form)
    if request.htmx:
        return render(
            request,
            "library/_actions_collect.html",
            {
                "next": request.POST.get("next", ""),
                "work_id": request.POST.get("work", ""),
                "sentence_id": request.POST.get("sentence", ""),
                "status": status,
                "chosen": added_to,
                "library_collections": selectors.list_collections(request.user),
            },
        )
    (messages.success if added_to else messages.error)(request, status)
    return _back(request, "/library/")


@require_GET
def citation(request: HttpRequest, work_id: str, style: str) -> HttpResponse:
    """A work's reference in a citation style, as plain text for the clipboard (cached: the
    same work and style always give the same text)."""
    work = get_object_or_404(Work, pk=work_id, published=True)
    try:
        text = services.format_citation_text(work, style)
    except ApplicationError:
        raise Http404("There is no such citation style.") from None
    return HttpResponse(text, content_type="text/plain; charset=utf-8")
