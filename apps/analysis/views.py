"""The researcher's pages for analyses: the workspace, an analysis, its progress, history and
text search. Thin: forms read the input, services and selectors do the work, and an
`ApplicationError` becomes a message on the page.

Every state of the analysis page is its URL: `?model=&topics=&creators=` (the ranking),
`cell=r,c` (a grid cell's sentences), `k=` (how many), `group=work`, `tab=figures` (plates of
the corpus like the image, crop or cell, instead of sentences), and the map on the
image, `heatmap=<sentence>` or `where=<words>` (read by the page's script). Opening a URL
whose model or filters differ from the analysis's re-ranks it first, so a pasted link shows
what its sender saw.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.analysis import figures, selectors, services
from apps.analysis.forms import CropForm, FilterForm, TextQueryForm, UploadForm
from apps.analysis.models import Analysis
from apps.core.errors import ApplicationError
from apps.core.files import stored_file_response
from apps.corpus.selectors import list_card_works, list_published_figures
from apps.engine.config import default_model_key, model_label
from apps.library import selectors as library_selectors

PAGE_SIZES = (25, 50, 100)
HISTORY_PAGE_SIZE = 24


def _owned(request: HttpRequest, pk) -> Analysis:
    return get_object_or_404(selectors.list_analyses(request.user), pk=pk)


def workspace(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    refused = 400  # the status of a form with errors: 429 for a quota the upload is over
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            analysis = services.create_analysis_from_upload(
                owner=request.user,
                upload=data.get("image"),
                example=data.get("example"),
                model_key=data["model"],
                topic_ids=data["topics"],
                creator_ids=data["creators"],
            )
        except ApplicationError as error:
            form.add_error("image", error.sentence)
            refused = error.status
        else:
            return redirect(analysis_url(analysis))
    return render(
        request,
        "analysis/workspace.html",
        {
            "form": form,
            "examples": selectors.list_examples(),
            "recent": selectors.list_analyses(request.user, own=True)[:6],
            "max_upload_mb": settings.ANALYSIS_MAX_UPLOAD_BYTES / 1_000_000,
            "max_upload_bytes": settings.ANALYSIS_MAX_UPLOAD_BYTES,
        },
        status=refused if form.errors else 200,
    )


def example_image(request: HttpRequest, pk: int) -> FileResponse:
    """An example's gallery thumbnail (the full painting is read only when it is analysed)."""
    example = get_object_or_404(selectors.list_examples(), pk=pk)
    return stored_file_response(example.thumbnail)


def analysis_url(analysis: Analysis, **params) -> str:
    """The page of `analysis` showing its current model and filters (and any `params`)."""
    query = selectors.build_view_query(analysis)
    for name, value in params.items():
        if value:
            query[name] = value
    return reverse("analysis:page", kwargs={"pk": analysis.pk}) + "?" + query.urlencode()


def analysis_page(request: HttpRequest, pk) -> HttpResponse:
    analysis = _owned(request, pk)
    view = selectors.read_view(request.GET, analysis)
    if view.differs_from(analysis) and analysis.status == Analysis.Status.DONE:
        try:
            services.rerun_analysis(
                analysis,
                model_key=view.model_key,
                topic_ids=view.topic_ids,
                creator_ids=view.creator_ids,
            )
        except ApplicationError as error:
            messages.error(request, error.sentence)
            return redirect(analysis_url(analysis))
        analysis.refresh_from_db()
    embedding = selectors.get_embedding(analysis)
    page = _PageUrls(request, analysis)
    saved = library_selectors.get_saved_for_analysis(analysis)
    pins = list(library_selectors.list_pins(saved)) if saved else []
    for pin in pins:
        pin.place_url = library_selectors.analysis_page_url(analysis, pin.cell)
    context = {
        "analysis": analysis,
        "view": view,
        "filters": FilterForm(initial=view.initial()),
        "grid": _grid(embedding, page, view.cell, analysis) if embedding else None,
        "lineage": selectors.get_lineage(analysis),
        "model_label": model_label(analysis.model_key),
        "clear_url": page.with_(topics=None, creators=None, cell=None),
        "whole_url": page.with_(cell=None),
        "group_url": page.with_(group="work"),
        "ungroup_url": page.with_(group=None),
        "saved": saved,
        "pins": pins,
        "pinned_ids": library_selectors.list_pinned_sentence_ids(saved, view.cell),
    }
    if analysis.status == Analysis.Status.DONE:
        try:
            if view.tab == "figures":
                found = figures.figures_for_analysis(analysis, cell=view.cell, k=view.k)
                cards = _figure_cards(found)
                context["figure_cards"] = cards
            else:
                hits = services.rank_for_view(analysis, cell=view.cell, k=view.k)
                cards = selectors.build_cards(hits, list_card_works(hits))
                context["cards"] = cards
                context["groups"] = selectors.group_cards(cards) if view.group else None
        except ApplicationError as error:
            messages.error(request, error.sentence)
            return redirect(analysis_url(analysis))
        context["tabs"] = _tabs(view.tab, page.with_)
        bigger = [size for size in PAGE_SIZES if size > view.k]
        if bigger and len(cards) >= view.k:
            context["more_k"] = bigger[0]
            context["more_url"] = page.with_(k=str(bigger[0]))
    return render(request, "analysis/analysis.html", context)


def _figure_cards(hits) -> list[selectors.FigureCard]:
    return selectors.build_figure_cards(hits, list_published_figures(hit.figure_id for hit in hits))


def _tabs(current: str, url_for) -> list[dict]:
    """The results tabs as links: the same page with `tab=` changed (sentences is the default
    and leaves the parameter out, so existing links keep their meaning)."""
    return [
        {
            "name": name,
            "label": name.capitalize(),
            "href": url_for(tab=None if name == selectors.RESULT_TABS[0] else name),
            "current": name == current,
        }
        for name in selectors.RESULT_TABS
    ]


class _PageUrls:
    """This page's URL with some query parameters changed (None drops one)."""

    def __init__(self, request: HttpRequest, analysis: Analysis) -> None:
        self.path = reverse("analysis:page", kwargs={"pk": analysis.pk})
        self.query = (
            request.GET.copy() if "model" in request.GET else selectors.build_view_query(analysis)
        )
        for name in ("cell", "k", "group", "heatmap", "where", "tab"):
            if name in request.GET and name not in self.query:
                self.query[name] = request.GET[name]

    def with_(self, **changes: str | None) -> str:
        query = self.query.copy()
        query.pop("heatmap", None)
        query.pop("where", None)
        for name, value in changes.items():
            query.pop(name, None)
            if value is not None:
                query[name] = value
        return f"{self.path}?{query.urlencode()}"


def _grid(embedding, page: _PageUrls, selected, analysis: Analysis) -> dict | None:
    """The grid as the page draws it: each cell a link to its own sentences."""
    grid = embedding.grid()
    if grid is None:
        return None
    links = [
        {
            "row": row,
            "col": col,
            "box": ",".join(str(value) for value in box),
            "href": page.with_(cell=f"{row},{col}"),
            "selected": selected == (row, col),
        }
        for row, boxes in enumerate(grid["cells"])
        for col, box in enumerate(boxes)
    ]
    left, top, right, bottom = grid["view_box"]
    # What the analysis asked about: its region, or the whole painting.
    x0, y0, x1, y1 = analysis.crop or (0, 0, analysis.width, analysis.height)
    partial = left > x0 + 1 or top > y0 + 1 or right < x1 - 1 or bottom < y1 - 1
    return {**grid, "links": links, "partial": partial}


def analysis_progress(request: HttpRequest, pk) -> HttpResponse:
    """The progress panel, polled by htmx while the job is queued or running; once it has
    ended the page reloads itself to show the results (or the failure)."""
    analysis = _owned(request, pk)
    if analysis.status in (Analysis.Status.DONE, Analysis.Status.FAILED):
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(
        request,
        "analysis/_progress.html",
        {"analysis": analysis, "stalled": selectors.analysis_stalled(analysis)},
    )


def heatmap_state(request: HttpRequest, pk, sentence_id: str) -> JsonResponse:
    """Whether a requested heatmap is ready, for the page's script to poll (the API answers
    404 until then, which a page should not keep causing)."""
    analysis = _owned(request, pk)
    return JsonResponse({"ready": selectors.get_heatmap(analysis, sentence_id) is not None})


@require_POST
def analysis_cancel(request: HttpRequest, pk) -> HttpResponse:
    analysis = _owned(request, pk)
    services.cancel_analysis(analysis)
    messages.info(request, "The analysis was cancelled.")
    return redirect(analysis_url(analysis))


@require_POST
def analysis_retry(request: HttpRequest, pk) -> HttpResponse:
    analysis = _owned(request, pk)
    try:
        services.retry_analysis(analysis)
    except ApplicationError as error:
        messages.error(request, error.sentence)
    return redirect(analysis_url(analysis))


@require_POST
def analysis_crop(request: HttpRequest, pk) -> HttpResponse:
    """'Analyse region': a new analysis of the same image with the crop, linked to this one
    so that undo and redo move between them with their results."""
    analysis = _owned(request, pk)
    form = CropForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Draw a region on the image first.")
        return redirect(analysis_url(analysis))
    try:
        region = services.create_region_analysis(analysis, form.box())
    except ApplicationError as error:
        messages.error(request, error.sentence)
        return redirect(analysis_url(analysis))
    return redirect(analysis_url(region))


def history(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.list_analyses(request.user, own=True), HISTORY_PAGE_SIZE)
    shown = page.get_page(request.GET.get("page"))
    for analysis in shown.object_list:
        analysis.model_label = model_label(analysis.model_key)
    return render(request, "analysis/history.html", {"page": shown})


def search(request: HttpRequest) -> HttpResponse:
    params = None
    if "q" in request.GET:
        # A link or a bookmark may carry only the text: search with the default model.
        params = request.GET.copy()
        if not params.get("model"):
            params["model"] = default_model_key()
    form = TextQueryForm(params)
    tab = selectors.read_tab(request.GET)
    # The words' form carries the filters and the tab along (and the filters' form the words).
    kept = [
        (name, value)
        for name in ("model", "topics", "creators")
        for value in (params.getlist(name) if params else [])
        if value
    ]
    if tab != selectors.RESULT_TABS[0]:
        kept.append(("tab", tab))
    context: dict = {"form": form, "kept_filters": kept, "tab": tab}
    status = 200
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        asked = {
            "model_key": data["model"],
            "topic_ids": data["topics"],
            "creator_ids": data["creators"],
            "k": settings.ANALYSIS_RESULTS,
        }
        try:
            if tab == "figures":
                found = figures.search_figures_by_text(data["q"], **asked)
                context["figure_cards"] = _figure_cards(found)
            else:
                hits = services.search_text(data["q"], **asked)
                context["cards"] = selectors.build_cards(hits, list_card_works(hits))
        except ApplicationError as error:
            form.add_error(None, error.sentence)
            status = error.status
        else:
            context["tabs"] = _tabs(tab, lambda **change: _search_url(params, **change))
    return render(request, "analysis/search.html", context, status=status)


def _search_url(params, **changes: str | None) -> str:
    query = params.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return f"{reverse('analysis:search')}?{query.urlencode()}"


def text_heatmap_state(request: HttpRequest, pk, digest: str) -> JsonResponse:
    """Whether a 'where is' map is ready (see `heatmap_state`)."""
    analysis = _owned(request, pk)
    return JsonResponse({"ready": selectors.get_text_heatmap(analysis, digest) is not None})
