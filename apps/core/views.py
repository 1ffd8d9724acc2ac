"""The site's error pages: the JSON envelope under the API, Django's pages elsewhere.

DRF answers errors raised inside API views itself (`apps.core.api`); these handlers cover what
Django decides before or around a view (a body it refuses to read, an unmatched URL, a crash).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

API_PREFIX = "/api/"


def envelope(code: str, sentence: str, status: int) -> JsonResponse:
    """The API's error body, for refusals made outside DRF's views."""
    return JsonResponse({"error": code, "detail": sentence}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return envelope("bad_request", "The request could not be read.", 400)
    return defaults.bad_request(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return envelope("not_found", f"There is no API endpoint {request.path!r}.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return envelope("server_error", "The server failed; the error has been logged.", 500)
    return defaults.server_error(request)
