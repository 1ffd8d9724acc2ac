"""Named API tokens: hashed at rest, shown once, revocable, and what the API accepts."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import create_api_token, record_api_token_use, revoke_api_token
from apps.accounts.templatetags.accounts import last_used

pytestmark = pytest.mark.django_db

API_URL = "/api/v1/topics"
PASSWORD = "a-long-passphrase-42"


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", "ada@example.org", PASSWORD)


def api_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_the_database_holds_a_digest_and_never_the_key(ada):
    token, key = create_api_token(ada, "laptop")

    assert key.startswith("af_")
    assert len(key) > 40
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(token.prefix)
    assert len(token.prefix) < 12
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert key not in stored


def test_a_token_authenticates_the_api_with_the_usual_header(ada):
    _token, key = create_api_token(ada, "laptop")

    assert api_client(key).get(API_URL).status_code == 200


def test_a_request_without_a_valid_token_gets_401_and_a_token_challenge(ada):
    create_api_token(ada, "laptop")

    response = api_client("af_not-a-key").get(API_URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_token_of_an_inactive_user_is_refused(ada):
    _token, key = create_api_token(ada, "laptop")
    ada.is_active = False
    ada.save()

    assert api_client(key).get(API_URL).status_code == 401


def test_revoking_a_token_ends_its_access_at_once(client, ada):
    token, key = create_api_token(ada, "laptop")
    program = api_client(key)
    assert program.get(API_URL).status_code == 200
    client.force_login(ada)

    response = client.post(f"/accounts/profile/tokens/{token.id}/revoke/")

    assert response.status_code == 302
    assert program.get(API_URL).status_code == 401
    assert not ApiToken.objects.filter(pk=token.pk).exists()


def test_revoking_leaves_the_users_other_tokens_working(ada):
    laptop, _ = create_api_token(ada, "laptop")
    _, server_key = create_api_token(ada, "server")

    revoke_api_token(ada, laptop.id)

    assert api_client(server_key).get(API_URL).status_code == 200


def test_another_users_token_cannot_be_revoked(client, ada, django_user_model):
    grace = django_user_model.objects.create_user("grace", password=PASSWORD)
    theirs, their_key = create_api_token(grace, "cluster")
    client.force_login(ada)

    response = client.post(f"/accounts/profile/tokens/{theirs.id}/revoke/")

    assert response.status_code == 404
    assert api_client(their_key).get(API_URL).status_code == 200


def test_revoking_needs_a_post(client, ada):
    token, _ = create_api_token(ada, "laptop")
    client.force_login(ada)

    assert client.get(f"/accounts/profile/tokens/{token.id}/revoke/").status_code == 405
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_the_api_records_last_used(ada):
    token, key = create_api_token(ada, "laptop")
    assert token.last_used is None

    api_client(key).get(API_URL)

    token.refresh_from_db()
    assert token.last_used is not None


def test_last_used_is_written_at_most_once_a_minute(ada):
    token, _ = create_api_token(ada, "laptop")
    first = token.created + timedelta(seconds=5)
    record_api_token_use(token, now=first)

    record_api_token_use(ApiToken.objects.get(pk=token.pk), now=first + timedelta(seconds=50))
    assert ApiToken.objects.get(pk=token.pk).last_used == first

    later = first + timedelta(seconds=61)
    record_api_token_use(ApiToken.objects.get(pk=token.pk), now=later)
    assert ApiToken.objects.get(pk=token.pk).last_used == later


def test_last_used_reads_at_the_resolution_it_is_recorded_with():
    now = timezone.now()

    assert last_used(None) == "Never"
    assert last_used(now - timedelta(seconds=20)) == "In the last minute"
    assert last_used(now - timedelta(minutes=5, seconds=3)) == "5\xa0minutes ago"


def test_the_profile_shows_a_new_key_once_and_then_only_its_prefix(client, ada):
    client.force_login(ada)

    created = client.post("/accounts/profile/tokens/", {"name": "laptop"})

    token = ApiToken.objects.get(user=ada)
    page = created.content.decode()
    key = page.split('data-testid="new-key"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    later = client.get("/accounts/profile/").content.decode()
    assert key not in later
    assert "laptop" in later
    assert token.prefix in later


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/accounts/profile/", None),
        ("post", "/accounts/profile/tokens/", {"name": "laptop"}),
    ],
)
def test_profile_pages_are_never_stored_by_a_cache(client, ada, method, url, data):
    client.force_login(ada)

    response = getattr(client, method)(url, data)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_a_token_needs_a_name(client, ada):
    client.force_login(ada)

    response = client.post("/accounts/profile/tokens/", {"name": "  "})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_profile_lists_only_the_users_own_tokens(client, ada, django_user_model):
    grace = django_user_model.objects.create_user("grace", password=PASSWORD)
    create_api_token(grace, "grace-cluster")
    create_api_token(ada, "ada-laptop")
    client.force_login(ada)

    page = client.get("/accounts/profile/").content.decode()

    assert "ada-laptop" in page
    assert "grace-cluster" not in page


def test_deleting_a_user_deletes_their_tokens(ada):
    create_api_token(ada, "laptop")

    ada.delete()

    assert not ApiToken.objects.exists()


def test_create_api_token_prints_a_key_that_works_once(django_user_model, capsys):
    robot = django_user_model.objects.create_user("robot")

    call_command("create_api_token", "robot", "--name", "nightly export")

    key = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(user=robot)
    assert token.name == "nightly export"
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    assert api_client(key).get(API_URL).status_code == 200


def test_create_api_token_names_an_unknown_user():
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("create_api_token", "nobody")


def test_staff_see_tokens_in_the_admin_without_their_digests_and_can_revoke_them(
    client, ada, django_user_model
):
    token, key = create_api_token(ada, "laptop")
    client.force_login(django_user_model.objects.create_superuser("curator", "c@example.org"))

    listing = client.get("/admin/accounts/apitoken/").content.decode()
    assert "laptop" in listing
    assert token.digest not in listing
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403

    client.post(f"/admin/accounts/apitoken/{token.id}/delete/", {"post": "yes"})
    assert api_client(key).get(API_URL).status_code == 401
