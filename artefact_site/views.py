"""Site-wide views: the home page, the health endpoint and the metrics endpoint."""

import hmac

import django_rq
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from rest_framework.exceptions import AuthenticationFailed

from apps.accounts.authentication import ApiTokenAuthentication
from apps.core import metrics as site_metrics
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


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's text format, for staff or a scraper sending ``METRICS_TOKEN``. Anyone else
    gets the site's 404, as for an address that does not exist: queue depths and latencies
    are nobody else's business, and a 403 would tell that something is here."""
    if not (_is_staff(request) or _has_metrics_token(request)):
        raise Http404
    body, content_type = site_metrics.render(
        django_rq.get_connection("default"), list(settings.RQ_QUEUES)
    )
    return HttpResponse(body, content_type=content_type)


def _has_metrics_token(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token, expected)
