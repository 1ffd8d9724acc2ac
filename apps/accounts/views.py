"""Sign-up, profile and API-token pages; log-in, log-out and passwords are Django's views.

Every page needs a login (``LoginRequiredMiddleware``) except those marked
``login_not_required`` here and Django's log-in and password-reset views, which are marked so.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.messages.views import SuccessMessageMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.forms import ApiTokenForm, PasswordChangeForm, SignUpForm, lockout_sentence
from apps.accounts.models import ApiToken
from apps.accounts.selectors import api_tokens_of
from apps.accounts.services import create_api_token, revoke_api_token
from apps.core.ratelimit import rate_limited, too_many_requests


@login_not_required
@require_http_methods(["GET", "POST"])
@rate_limited("signup")
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # Named: with django-axes first in AUTHENTICATION_BACKENDS there is more than one.
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to ArteFact, {user.get_username()}.")
        return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})


def _profile(
    request: HttpRequest, form: ApiTokenForm, new_token: ApiToken | None = None, key: str = ""
) -> HttpResponse:
    return render(
        request,
        "accounts/profile.html",
        {
            "tokens": api_tokens_of(request.user),
            "form": form,
            "new_token": new_token,
            "new_key": key,
        },
    )


# never_cache: the page that shows a new key must not stay in the browser's cache or history.
@never_cache
@require_GET
def profile(request: HttpRequest) -> HttpResponse:
    return _profile(request, ApiTokenForm())


@never_cache
@require_POST
@rate_limited("api_token", per_user=True)
def create_token(request: HttpRequest) -> HttpResponse:
    """Create a token and show its key in this response, the only place it ever appears.

    The key is rendered straight into the page rather than carried through a redirect, which
    would have to put it into the session store.
    """
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _profile(request, form)
    token, key = create_api_token(request.user, form.cleaned_data["name"])
    return _profile(request, ApiTokenForm(), new_token=token, key=key)


@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = revoke_api_token(request.user, token_id)
    except ApiToken.DoesNotExist:
        raise Http404("You have no such token.") from None
    messages.success(
        request,
        f"Token “{token.name}” ({token.prefix}…) is revoked: programs that use it are refused "
        "from now on.",
    )
    return redirect("accounts:profile")


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    form_class = PasswordChangeForm
    success_url = reverse_lazy("accounts:profile")
    success_message = "Your password is changed."


def locked_out(
    request: HttpRequest, response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """django-axes' answer to a locked-out log-in: the log-in page as rendered, whose form
    says why (`LoginForm`), with status 429; a 429 page where no page was rendered."""
    seconds = str(round(settings.AXES_COOLOFF_TIME.total_seconds()))
    if response is None:
        return too_many_requests(request, lockout_sentence(), int(seconds))
    response.status_code = 429
    response["Retry-After"] = seconds
    return response
