"""The keys of rest_framework.authtoken carry over to ApiToken, hashed, and leave no clear text."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken

pytestmark = pytest.mark.django_db

migration = importlib.import_module("apps.accounts.migrations.0002_hash_authtoken_keys")
OLD_KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"


def test_old_keys_keep_working_and_the_clear_text_is_gone(django_user_model):
    user = django_user_model.objects.create_user("ada")
    created = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    with connection.cursor() as cursor:
        # The table as rest_framework.authtoken created it, in this test's transaction only.
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamptz NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)", [OLD_KEY, created, user.id]
        )

    with connection.schema_editor() as editor:
        migration.hash_authtoken_keys(apps, editor)

    token = ApiToken.objects.get(user=user)
    assert (token.prefix, token.created) == (OLD_KEY[:9], created)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone() == (0,)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {OLD_KEY}")
    assert client.get("/api/v1/topics").status_code == 200


def test_a_database_that_never_had_authtoken_is_left_alone():
    with connection.schema_editor() as editor:
        migration.hash_authtoken_keys(apps, editor)

    assert not ApiToken.objects.exists()
