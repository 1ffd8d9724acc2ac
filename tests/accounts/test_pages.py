"""Sign-up, log-in, log-out and passwords, and which pages need a login."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-passphrase-42"
NEW_PASSWORD = "another-long-passphrase-17"


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", "ada@example.org", PASSWORD)


def sign_up(client, username: str = "ada", email: str = "ada@example.org"):
    return client.post(
        "/accounts/signup/",
        {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD},
    )


def test_sign_up_creates_a_user_with_an_email_and_logs_them_in(client):
    response = sign_up(client)

    assert response.status_code == 302
    assert get_user_model().objects.get(username="ada").email == "ada@example.org"
    assert client.get("/accounts/profile/").status_code == 200


def test_sign_up_refuses_an_email_address_that_has_an_account(client, ada):
    response = sign_up(client, username="ada2", email="ADA@example.org")

    assert response.status_code == 200
    assert "An account with this e-mail address exists already" in response.content.decode()
    assert not get_user_model().objects.filter(username="ada2").exists()


def test_sign_up_needs_an_email_address(client):
    response = sign_up(client, email="")

    assert response.status_code == 200
    assert not get_user_model().objects.exists()


def test_log_in_and_log_out(client, ada):
    response = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/accounts/profile/").status_code == 200

    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/accounts/profile/").status_code == 302


def test_a_wrong_password_shows_the_form_again_with_an_error(client, ada):
    response = client.post("/accounts/login/", {"username": "ada", "password": "wrong"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_password_reset_sends_a_link_that_sets_a_new_password(client, ada, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": "ada@example.org"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/sent/"

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ada@example.org"]
    assert message.subject == "Choose a new ArteFact password"
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/\S+/)", message.body)
    assert link, message.body
    # Django swaps the token in the link for a session-held one and redirects.
    form_url = client.get(link.group(1))["Location"]
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert done["Location"] == "/accounts/password/reset/complete/"
    ada.refresh_from_db()
    assert ada.check_password(NEW_PASSWORD)


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.org"})

    assert response["Location"] == "/accounts/password/reset/sent/"
    assert mailoutbox == []


def test_password_change(client, ada):
    client.force_login(ada)

    response = client.post(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response["Location"] == "/accounts/profile/"
    ada.refresh_from_db()
    assert ada.check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    "url", ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]
)
def test_public_pages_open_without_a_login(client, url):
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", ["/accounts/profile/", "/accounts/password/change/"])
def test_other_pages_send_visitors_to_log_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"
