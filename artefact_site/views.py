"""Site-wide views: the home page and the health endpoint."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from rest_framework.exceptions import AuthenticationFailed

from apps.accounts.authentication import ApiTokenAuthentication
from artefact_site import health


@login_not_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What ArteFact is, for visitors; researchers who are logged in go to their workspace."""
    if request.user.is_authenticated:
        return redirect("analysis:workspace")
    return render(request, "home.html")


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every part answers, 503 otherwise. Staff (a session, or an API token of a
    staff account) get each part's details and the failing parts' names; anyone else gets
    only ``{"ok": …}``: versions, queue names and worker counts help an attacker, not a
    load balancer."""
    report = health.check()
    body = report.as_dict() if _is_staff(request) else {"ok": report.ok}
    return JsonResponse(body, status=200 if report.ok else 503)


def _is_staff(request: HttpRequest) -> bool:
    if request.user.is_authenticated:
        return request.user.is_staff
    try:
        authenticated = ApiTokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return False
    return authenticated is not None and authenticated[0].is_staff
