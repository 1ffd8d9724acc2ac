"""Brute force and floods: the log-in lockout (django-axes, counted in PostgreSQL) and the rate
limits of log-in, sign-up, password reset and API-token creation (counted in Redis)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import RequestFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-passphrase-42"
LOCKED_OUT = "too many failed log-ins for this user name from your address"


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", "ada@example.org", PASSWORD)


def log_in(client, password: str, address: str = "127.0.0.1", **headers):
    return client.post(
        "/accounts/login/",
        {"username": "ada", "password": password},
        REMOTE_ADDR=address,
        headers=headers,
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_lock_the_user_name_out_from_that_address(client, ada):
    for _ in range(4):
        response = log_in(client, "wrong")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    fifth = log_in(client, "wrong")
    assert fifth.status_code == 429
    assert LOCKED_OUT in fifth.content.decode()
    assert int(fifth["Retry-After"]) == 15 * 60

    right = log_in(client, PASSWORD)
    assert right.status_code == 429
    assert LOCKED_OUT in right.content.decode()
    assert 'name="username"' in right.content.decode()  # the log-in form, with the sentence
    assert not logged_in(client)

    elsewhere = log_in(client, PASSWORD, address="198.51.100.9")
    assert elsewhere.status_code == 302
    assert logged_in(client)


def test_the_lockout_ends_after_its_cool_off(client, ada, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    for _ in range(5):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 429

    time.sleep(1.2)

    assert log_in(client, PASSWORD).status_code == 302


def test_a_successful_log_in_starts_the_count_again(client, ada):
    for _ in range(4):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302
    client.post("/accounts/logout/")

    for _ in range(4):
        assert log_in(client, "wrong").status_code == 200


def test_behind_a_proxy_the_client_is_the_address_the_proxy_saw(client, ada, settings):
    settings.ARTEFACT_PROXY_COUNT = 1
    forged = {"X-Forwarded-For": "203.0.113.1, 203.0.113.7"}  # the client wrote the first
    for _ in range(5):
        log_in(client, "wrong", address="10.0.0.1", **forged)

    assert log_in(client, PASSWORD, "10.0.0.1", **forged).status_code == 429
    other = {"X-Forwarded-For": "203.0.113.1, 203.0.113.8"}
    assert log_in(client, PASSWORD, "10.0.0.1", **other).status_code == 302


def test_client_ip_trusts_only_the_proxies_it_is_told_of(settings):
    from apps.core.ratelimit import client_ip

    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    assert client_ip(request) == "10.0.0.1"
    settings.ARTEFACT_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.7"
    settings.ARTEFACT_PROXY_COUNT = 3  # more proxies than entries: the header is not trusted
    assert client_ip(request) == "10.0.0.1"


def test_force_login_and_api_tokens_are_not_counted(client, ada, api):
    """Sessions made by force_login and API-token requests never pass through authenticate(),
    so the suite's log-ins and API clients cannot be locked out."""
    for _ in range(5):
        log_in(client, "wrong")
    client.force_login(ada)
    assert client.get("/accounts/profile/").status_code == 200
    assert api.get("/api/v1/topics").status_code == 200


SIGN_UP = {
    "username": "grace",
    "email": "grace@example.org",
    "password1": PASSWORD,
    "password2": "not-the-same-passphrase",
}


@pytest.mark.parametrize(
    ("scope", "url", "data"),
    [
        ("login", "/accounts/login/", {"username": "nobody", "password": "wrong"}),
        ("signup", "/accounts/signup/", SIGN_UP),
        ("password_reset", "/accounts/password/reset/", {"email": "nobody@example.org"}),
    ],
)
def test_an_address_posting_too_often_is_told_to_wait(
    client, settings, redis_connection, scope, url, data
):
    settings.RATE_LIMITS = settings.RATE_LIMITS | {scope: "3/h"}
    for _ in range(3):
        assert client.post(url, data).status_code in (200, 302)

    refused = client.post(url, data)

    assert refused.status_code == 429
    assert "too many attempts from your address; try again in" in refused.content.decode()
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert client.get(url).status_code == 200  # the form itself still opens
    other = client.post(url, data, REMOTE_ADDR="198.51.100.9")
    assert other.status_code in (200, 302)


def test_api_tokens_are_created_at_most_so_often_per_user(
    client, ada, django_user_model, settings, redis_connection
):
    settings.RATE_LIMITS = settings.RATE_LIMITS | {"api_token": "2/h"}
    client.force_login(ada)
    for name in ("one", "two"):
        assert client.post("/accounts/profile/tokens/", {"name": name}).status_code == 200

    refused = client.post("/accounts/profile/tokens/", {"name": "three"})

    assert refused.status_code == 429
    assert "You have made too many of these requests" in refused.content.decode()
    assert ada.api_tokens.count() == 2
    client.force_login(django_user_model.objects.create_user("grace"))
    assert client.post("/accounts/profile/tokens/", {"name": "one"}).status_code == 200


def test_pages_that_show_a_new_api_key_are_never_stored(client, ada):
    client.force_login(ada)
    for response in (
        client.get("/accounts/profile/"),
        client.post("/accounts/profile/tokens/", {"name": "laptop"}),
    ):
        assert "no-store" in response["Cache-Control"]
