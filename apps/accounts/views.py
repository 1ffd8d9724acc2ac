"""Sign-up, profile and API-token pages (log in and out are Django's own views)."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from apps.accounts.services import rotate_api_token


def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        messages.success(request, "Welcome to ArteFact.")
        return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    token = Token.objects.filter(user=request.user).first()
    return render(request, "accounts/profile.html", {"token": token})


@login_required
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    rotate_api_token(request.user)
    messages.success(request, "A new API token was created; the old one no longer works.")
    return redirect("accounts:profile")
