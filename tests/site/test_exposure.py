"""What strangers learn about the server: /healthz tells anonymous callers only whether the
site is up, and no API response names a path on the server."""

from __future__ import annotations

import pytest

from apps.accounts.services import create_api_token
from tests.analysis.conftest import upload
from tests.conftest import BASE_DIR

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysis_id(api, media, redis_connection) -> str:
    return upload(api).json()["id"]


def test_anonymous_health_checks_learn_only_whether_the_site_is_up(client, redis_connection):
    response = client.get("/healthz")

    assert response.status_code == 503  # no model worker runs in this test
    assert response.json() == {"ok": False}


def test_staff_see_the_health_details_by_session_or_by_api_token(
    client, admin_client, django_user_model, redis_connection
):
    assert admin_client.get("/healthz").json()["failing"] == ["workers", "models"]

    staff = django_user_model.objects.create_user("operator", is_staff=True)
    _token, key = create_api_token(staff, "monitoring")
    body = client.get("/healthz", headers={"Authorization": f"Token {key}"}).json()
    assert body["database"]["ok"] is True
    assert "pgvector" in body["database"]

    researcher = django_user_model.objects.create_user("researcher-2")
    _token, key = create_api_token(researcher, "laptop")
    for header in (f"Token {key}", "Token af_not-a-key"):
        body = client.get("/healthz", headers={"Authorization": header}).json()
        assert body == {"ok": False}


def test_the_model_list_names_no_server_path(api, models, tiny_models):
    response = api.get("/api/v1/models")

    text = response.content.decode()
    assert str(tiny_models.base) not in text
    assert str(BASE_DIR) not in text
    listed = {model["key"]: model for model in response.json()}
    assert listed["paintingclip"]["base"] == f"local:{tiny_models.base.name}"
    assert listed["paintingclip"]["adapter"] == f"local:{tiny_models.adapter.name}"
    assert listed["clip"]["adapter"] is None


def test_server_paths_in_messages_are_cut_to_their_last_part():
    from apps.core.paths import public_model_source, without_server_paths

    assert public_model_source("openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"
    assert public_model_source("/models/clip-vit-base-patch32") == "local:clip-vit-base-patch32"
    message = (
        "CLIP_BASE_MODEL='/srv/models/clip' is not a folder (see "
        "https://huggingface.co/openai/clip-vit-base-patch32); "
        "[Errno 2] No such file: /srv/artefact/media/uploads/ab12.jpg"
    )
    assert without_server_paths(message) == (
        "CLIP_BASE_MODEL='clip' is not a folder (see "
        "https://huggingface.co/openai/clip-vit-base-patch32); [Errno 2] No such file: ab12.jpg"
    )


def test_a_failed_analysis_tells_its_researcher_no_server_path(api, analysis_id):
    from apps.analysis import services

    services.mark_analysis_failed(
        analysis_id,
        "The analysis failed: [Errno 2] No such file or directory: "
        "'/srv/artefact/media/uploads/ab12.jpg'",
    )

    error = api.get(f"/api/v1/analyses/{analysis_id}").json()["error"]
    assert error == "The analysis failed: [Errno 2] No such file or directory: 'ab12.jpg'"
