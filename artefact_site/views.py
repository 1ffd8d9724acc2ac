"""Site-wide views: the home page and the health endpoint."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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
    """200 when every part answers, 503 naming the failing parts otherwise."""
    report = health.check()
    return JsonResponse(report.as_dict(), status=200 if report.ok else 503)
