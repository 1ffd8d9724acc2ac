"""Property-based run of the whole REST API from its OpenAPI schema: no request gets a 5xx,
and every response whose status the schema documents matches the body the schema declares."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from apps.accounts.services import create_api_token
from artefact_site.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/schema", application)


@pytest.fixture
def token_header(django_user_model, models, corpus) -> dict[str, str]:
    user = django_user_model.objects.create_user("fuzzer")
    _token, key = create_api_token(user, "schemathesis")
    return {"Authorization": f"Token {key}"}


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The WSGI handler closes database connections after each request; inside a test
    transaction that would end the test. Django's own test client detaches the same hooks."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def model_worker(request, workers):
    """Text search (of sentences or figures) needs a model worker to embed its query; the
    other endpoints need none."""
    if "/api/v1/search" in request.node.name or "/api/v1/figures/search" in request.node.name:
        workers.start_listening()


@pytest.mark.slow
@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_gets_a_server_error(case, token_header, model_worker):
    case.call_and_validate(
        headers=token_header, checks=[not_a_server_error, response_schema_conformance]
    )
