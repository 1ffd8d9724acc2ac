"""Hostile input and the headers of every response: a NUL character in any address or query
parameter is refused with a 400 (never a database error), and every kind of response carries
the CSP, Permissions-Policy and nosniff headers."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from tests.analysis.conftest import upload

pytestmark = pytest.mark.django_db

CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")


def routes(patterns=None, prefix: str = "") -> list[str]:
    """Every route of the site's URL configuration, as written (`api/v1/works/<str:work_id>`);
    regular-expression patterns are left out."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            found += routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and not str(pattern.pattern).startswith("^"):
            found.append(prefix + str(pattern.pattern))
    return found


def with_values(route: str, uuid: str, text: str) -> str:
    """`route` with each converter filled: ints with 1, uuids with `uuid`, text with `text`."""

    def value(found: re.Match) -> str:
        kind = found["kind"] or "str"
        return {"int": "1", "uuid": uuid}.get(kind, text)

    return "/" + CONVERTER.sub(value, route)


def refused_for_nul(response, path: str) -> None:
    assert response.status_code == 400, (path, response.status_code, response.content[:200])
    if path.startswith("/api/"):
        assert response.json() == {
            "error": "nul_character",
            "detail": "The address holds a NUL character (%00), which no ArteFact address may "
            "hold.",
        }


@pytest.fixture
def analysis_id(api, media, redis_connection) -> str:
    return upload(api).json()["id"]


def test_every_text_segment_of_every_address_refuses_a_nul_character(
    api, admin_client, analysis_id
):
    """Each route with a text segment, that segment holding %00: a 400 (the API's envelope
    under /api/), never a database error. Staff, so that no page stops at a log-in."""
    admin_client.force_login(api.user)  # owns the analysis the uuid segments name
    api.user.is_staff = api.user.is_superuser = True
    api.user.save()
    tried = []
    for route in routes():
        if not any((m["kind"] or "str") in ("str", "path") for m in CONVERTER.finditer(route)):
            continue
        path = with_values(route, analysis_id, "W1%00")
        client = api if path.startswith("/api/") else admin_client
        refused_for_nul(client.get(path), path)
        tried.append(path)
    assert "/api/v1/sentences/W1%00" in tried
    assert "/works/W1%00/" in tried
    assert f"/api/v1/analyses/{analysis_id}/heatmaps/W1%00.W1%00" in tried


def test_every_query_parameter_of_the_api_refuses_a_nul_character(api, analysis_id):
    """The API's query parameters as its OpenAPI schema declares them, each holding %00."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    tried = []
    for route, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        path = route.replace("{id}", analysis_id)
        path = re.sub(r"\{\w+\}", "1", path)
        for parameter in get.get("parameters", []):
            if parameter["in"] != "query":
                continue
            url = f"{path}?q=boat&{parameter['name']}=x%00"
            refused_for_nul(api.get(url), url)
            tried.append((route, parameter["name"]))
    assert ("/api/v1/search", "topics") in tried
    assert ("/api/v1/analyses/{id}/cells/{row}/{col}", "k") in tried
    assert len(tried) >= 10


@pytest.mark.parametrize(
    "path", ["/search/?q=%00", "/search/?q=boat&topics=T1%00", "/works/%00/", "/?next=%00"]
)
def test_portal_pages_refuse_a_nul_character(admin_client, path):
    refused_for_nul(admin_client.get(path), path)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/healthz",
        "/accounts/login/",
        "/admin/login/",
        "/api/v1/topics",
        "/api/v1/no-such-endpoint",
        "/no-such-page/",
        "/api/v1/docs",
    ],
)
def test_every_kind_of_response_carries_the_security_headers(client, redis_connection, path):
    response = client.get(path)

    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    policy = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in policy
    assert response["X-Content-Type-Options"] == "nosniff"
