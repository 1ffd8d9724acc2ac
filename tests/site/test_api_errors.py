"""Every refusal under `/api/v1/` is the JSON envelope `{"error", "detail"}`, including the
ones Django decides before a view runs: unknown paths, unparsable and oversized bodies."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.django_db


def envelope(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    assert body["detail"].endswith(".")
    return body["detail"]


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/analyses/x/y/z", "/api/v2/"])
def test_unknown_api_paths_answer_a_json_404(client, api, path):
    envelope(client.get(path), 404, "not_found")
    assert path in envelope(api.get(path), 404, "not_found")


def test_pages_outside_the_api_keep_html_404s(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_unparsable_json_body_is_refused_with_the_envelope(api):
    response = api.post("/api/v1/analyses", b"{not json", content_type="application/json")
    envelope(response, 400, "parse_error")


def test_an_oversized_body_is_refused_with_the_envelope(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = b'{"model": "clip", "topics": ["' + b"x" * 5000 + b'"]}'
    response = api.post("/api/v1/analyses", body, content_type="application/json")
    envelope(response, 413, "request_too_large")


@pytest.mark.parametrize(
    ("query", "code"), [("k=0", "bad_k"), ("k=101", "bad_k"), ("k=many", "bad_k")]
)
def test_bad_query_parameters_name_themselves(api, query, code):
    detail = envelope(api.get(f"/api/v1/search?q=boat&{query}"), 400, code)
    assert detail.startswith("k:")


def test_an_unknown_analysis_is_a_json_404(api):
    envelope(api.get(f"/api/v1/analyses/{uuid.uuid4()}"), 404, "not_found")


def test_the_browsable_api_offers_the_create_fields_for_a_new_analysis(api):
    page = api.get("/api/v1/analyses", HTTP_ACCEPT="text/html").content.decode()
    form = page[page.index('enctype="multipart/form-data"') :]
    assert 'name="image"' in form
    assert 'name="model"' in form
    assert 'name="status"' not in form
    assert 'name="progress"' not in form
