"""Request and response rules that hold for every URL of the site, API and pages alike.

They live here rather than in each view so that a new endpoint cannot forget them.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views import defaults

from apps.core.views import API_PREFIX, envelope

NUL = "\x00"
NUL_SENTENCE = "The address holds a NUL character (%00), which no ArteFact address may hold."


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
