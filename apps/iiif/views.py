"""IIIF out through share links, and the IIIF viewer page (Mirador).

A share link of a saved analysis serves the manifest and the annotation collection to anyone
with its token, with `Access-Control-Allow-Origin: *` so that a viewer on another site can
load them (and the image they name) with the link alone.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from apps.core.errors import NotFoundError
from apps.core.files import stored_file_response
from apps.iiif import documents, exports
from apps.library import selectors as library_selectors
from apps.library.views import shared_response


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
