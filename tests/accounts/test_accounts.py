"""Sign-up, log-in and API tokens."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_sign_up_creates_a_user_and_logs_them_in(client):
    password = "a-long-passphrase-42"
    response = client.post(
        "/accounts/signup/", {"username": "ada", "password1": password, "password2": password}
    )

    assert response.status_code == 302
    assert get_user_model().objects.filter(username="ada").exists()
    assert client.get("/accounts/profile/").status_code == 200


def test_profile_needs_a_login(client):
    response = client.get("/accounts/profile/")

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_replacing_the_token_invalidates_the_old_one(client, django_user_model):
    user = django_user_model.objects.create_user("ada", password="a-long-passphrase-42")
    client.force_login(user)
    client.post("/accounts/profile/token/")
    first = Token.objects.get(user=user).key

    client.post("/accounts/profile/token/")

    assert Token.objects.get(user=user).key != first
    assert Token.objects.filter(key=first).count() == 0


def test_create_api_token_prints_a_working_token(django_user_model, capsys):
    user = django_user_model.objects.create_user("robot")

    call_command("create_api_token", "robot")

    assert capsys.readouterr().out.strip() == Token.objects.get(user=user).key


def test_create_api_token_names_an_unknown_user():
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("create_api_token", "nobody")
