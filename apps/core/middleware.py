"""Request and response rules that hold for every URL of the site, API and pages alike.

They live here rather than in each view so that a new endpoint cannot forget them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.views import defaults

from apps.core import metrics
from apps.core.logs import REQUEST_ID_HEADER, accept_request_id, request_id_var
from apps.core.views import API_PREFIX, envelope

NUL = "\x00"
NUL_SENTENCE = "The address holds a NUL character (%00), which no ArteFact address may hold."


class RequestContext:
    """Give each request an id and time it (the first middleware, so that both cover all).

    The id is the client's ``X-Request-ID`` when it is short and plain (a proxy or a client
    that sets one can then find its own request in the logs), else a new one; it is bound
    for every log record of the request (`apps.core.logs`), travels in the ``meta`` of any
    job the request enqueues, and is sent back in the response's ``X-Request-ID``. The time
    goes to the request-latency histogram of ``/metrics`` under the URL's name, not its
    path, so that ids in paths do not each make a series.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        # Left bound until `request_finished`: Django logs a 404 or a 500 ("Not Found: …",
        # "Internal Server Error: …") after the middleware has returned.
        request_id_var.set(request_id)
        response = self.get_response(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        match = getattr(request, "resolver_match", None)
        metrics.observe_request(
            match.view_name if match else None,
            request.method or "",
            response.status_code,
            time.perf_counter() - started,
        )
        return response


def _forget_request_id(**kwargs: object) -> None:
    """After the response went out: log records of the thread's next work have no id."""
    request_id_var.set(None)


request_finished.connect(_forget_request_id, dispatch_uid="apps.core.forget_request_id")


class RefuseNulCharacters:
    """Answer 400 to a path or query string holding a NUL character.

    PostgreSQL text cannot hold NUL, so such a value reaching a query (a sentence id, a work
    id, a filter) ends in a driver error and a 500. No id, slug or parameter of the site may
    contain one, so the request is refused before any view runs, whichever view it names.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path or any(
            NUL in name or any(NUL in value for value in values)
            for name, values in request.GET.lists()
        ):
            if request.path.startswith(API_PREFIX):
                return envelope("nul_character", NUL_SENTENCE, 400)
            return defaults.bad_request(request, exception=None)
        return self.get_response(request)


class PermissionsPolicy:
    """Send ``Permissions-Policy`` (``settings.PERMISSIONS_POLICY``) on every response.

    Django sets the CSP, but has no setting for this header. ArteFact's pages use no camera,
    microphone, location, payment or sensor API, so they are switched off for the site and
    for anything it might frame: injected markup cannot ask for them.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=({' '.join(allowed)})"
            for feature, allowed in settings.PERMISSIONS_POLICY.items()
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.header)
        return response
