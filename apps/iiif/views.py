"""IIIF in from the workspace, IIIF out through share links, and the IIIF viewer (Mirador).

A share link of a saved analysis serves the manifest and the annotation collection to anyone
with its token, with `Access-Control-Allow-Origin: *` so that a viewer on another site can
load them (and the image they name) with the link alone.

A manifest's canvases are listed with thumbnails that the server fetches (`thumbnail`), under
the same rules as every IIIF fetch; the page signs each thumbnail's address so that the view
fetches only addresses a manifest gave, never one a visitor made up.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods

from apps.analysis import selectors as analysis_selectors
from apps.analysis import services as analysis_services
from apps.analysis.views import analysis_url
from apps.core.errors import ApplicationError, NotFoundError
from apps.core.files import stored_file_response
from apps.iiif import documents, exports, sources
from apps.iiif.fetch import iiif_enabled
from apps.iiif.forms import IiifForm
from apps.library import selectors as library_selectors
from apps.library.views import shared_response

EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
"""The CSP hash of an empty string. Mirador's styling (emotion) adds empty `<style>` elements
and fills them through the CSSOM (`insertRule`), which the CSP allows; the empty elements
themselves need this hash. It admits no inline style with any content."""

VIEWER_CSP = {
    **settings.SECURE_CSP,
    "style-src": [*settings.SECURE_CSP["style-src"], EMPTY_STYLE],
}

THUMBNAIL_SALT = "apps.iiif.thumbnail"
THUMBNAIL_MAX_AGE = 6 * 60 * 60
"""How long a signed thumbnail address of a listed canvas stays valid, in seconds."""


@require_http_methods(["GET", "POST"])
def import_from_iiif(request: HttpRequest) -> HttpResponse:
    """POST: analyse the painting at a IIIF address (a manifest of several canvases comes back
    here as a GET, to choose one). GET with `url`: the canvases of that manifest."""
    if not iiif_enabled():
        raise Http404("IIIF in is off.")
    form = IiifForm(request.POST if request.method == "POST" else request.GET or None)
    found = None
    status = 200
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            if request.method == "POST":
                analysis = analysis_services.create_analysis_from_iiif(
                    owner=request.user,
                    url=data["url"],
                    canvas_id=data["canvas"],
                    model_key=data["model"],
                )
                return redirect(analysis_url(analysis))
            found = sources.read_manifest(data["url"])
        except ApplicationError as error:
            if error.code == "iiif_canvas_required":
                query = urlencode({"url": data["url"], "model": data["model"]})
                return redirect(reverse("iiif:import") + "?" + query)
            form.add_error("url", error.sentence)
            status = error.status
    elif form.is_bound:
        status = 400
    canvases = []
    if found is not None:
        for canvas in found.canvases:
            address = sources.thumbnail_url(canvas)
            signed = signing.dumps(address, salt=THUMBNAIL_SALT) if address else ""
            canvases.append((canvas, signed))
    return render(
        request,
        "iiif/import.html",
        {"form": form, "manifest": found, "canvases": canvases},
        status=status,
    )


@require_GET
def thumbnail(request: HttpRequest, signed: str) -> HttpResponse:
    """A listed canvas's thumbnail, fetched by the server and re-encoded (`fetch_thumbnail`)."""
    if not iiif_enabled():
        raise Http404("IIIF in is off.")
    try:
        address = signing.loads(signed, salt=THUMBNAIL_SALT, max_age=THUMBNAIL_MAX_AGE)
        picture = sources.fetch_thumbnail(address)
    except (signing.BadSignature, ApplicationError) as error:
        raise Http404("No thumbnail.") from error
    response = HttpResponse(picture, content_type="image/jpeg")
    response["Cache-Control"] = f"private, max-age={THUMBNAIL_MAX_AGE}"
    return response


@require_GET
@csp_override(VIEWER_CSP)
def viewer(request: HttpRequest, pk) -> HttpResponse:
    """Your analysis in Mirador: its manifest from the API, the annotation panel open."""
    analysis = get_object_or_404(analysis_selectors.list_analyses(request.user), pk=pk)
    manifest = reverse("api:analysis-iiif-manifest", kwargs={"pk": analysis.pk})
    return render(
        request,
        "iiif/viewer.html",
        {
            "title": analysis.original_filename or "Untitled painting",
            "manifest_url": request.build_absolute_uri(manifest),
            "back_url": analysis_url(analysis),
        },
    )


def _shared_analysis(item: library_selectors.SharedItem):
    if item.saved is None:
        raise NotFoundError("not_found", "A shared collection has no IIIF manifest.")
    return item.saved.analysis


def _shared_links(request: HttpRequest, token: str) -> exports.Links:
    base = reverse("iiif:shared-manifest", kwargs={"token": token}).removesuffix("/manifest.json")
    image = reverse("iiif:shared-image", kwargs={"token": token})
    return exports.Links(request.build_absolute_uri(base), request.build_absolute_uri(image))


@shared_response
def shared_manifest(request: HttpRequest, item, token: str) -> HttpResponse:
    analysis = _shared_analysis(item)
    response = documents.manifest_response(analysis, _shared_links(request, token))
    return documents.allow_any_origin(response)


@shared_response
def shared_annotations(request: HttpRequest, item, token: str) -> HttpResponse:
    analysis = _shared_analysis(item)
    response = documents.annotations_response(analysis, _shared_links(request, token))
    return documents.allow_any_origin(response)


@shared_response
def shared_image(request: HttpRequest, item, token: str) -> HttpResponse:
    """The shared painting as the manifest names it, readable from other sites."""
    return documents.allow_any_origin(stored_file_response(_shared_analysis(item).image))


@shared_response
@csp_override(VIEWER_CSP)
def shared_viewer(request: HttpRequest, item, token: str) -> HttpResponse:
    """A shared analysis in Mirador, for anyone with the link."""
    _shared_analysis(item)
    manifest = reverse("iiif:shared-manifest", kwargs={"token": token})
    return render(
        request,
        "iiif/viewer.html",
        {
            "title": item.title,
            "manifest_url": request.build_absolute_uri(manifest),
            "back_url": reverse("library:shared", kwargs={"token": token}),
        },
    )
