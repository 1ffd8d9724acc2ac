"""Redis out of reach: an upload is refused with 503 and a sentence before anything is stored;
an analysis whose job could not be queued says so and can be tried again once Redis is back;
the account pages stay open (their rate limits are not counted meanwhile).

"Out of reach" is a Redis address where nothing listens: the client's connection is refused,
as it is when the server has stopped."""

from __future__ import annotations

import socket

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.analysis import services
from apps.analysis.models import Analysis
from tests.analysis.conftest import gpu_queue, upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dead_redis_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens once the probe is closed


def stop_redis_for(settings, url: str, *, cache: bool = True, queues: bool = True) -> None:
    if cache:
        settings.CACHES = {
            "default": {**settings.CACHES["default"], "LOCATION": url},
        }
    if queues:
        settings.RQ_QUEUES = {
            name: {**config, "URL": url} for name, config in settings.RQ_QUEUES.items()
        }


def stored_files(media) -> list:
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


def test_an_upload_without_redis_is_refused_and_stores_nothing(
    api, models, media, settings, dead_redis_url
):
    stop_redis_for(settings, dead_redis_url)

    response = upload(api)

    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"
    assert response.json()["detail"].endswith("try again in a minute.")
    assert not Analysis.objects.exists()
    assert stored_files(media) == []


def test_a_job_that_could_not_be_queued_fails_with_a_sentence_and_retries_later(
    api, models, media, settings, redis_connection, dead_redis_url
):
    live_queues = settings.RQ_QUEUES
    # The cache still answers, the queue not: Redis went away between the two.
    stop_redis_for(settings, dead_redis_url, cache=False)

    response = upload(api)

    assert response.status_code == 202
    analysis = Analysis.objects.get(pk=response.json()["id"])
    assert analysis.status == Analysis.Status.FAILED
    assert analysis.error == services.NOT_QUEUED
    assert api.get(f"/api/v1/analyses/{analysis.pk}").json()["status"] == "failed"

    settings.RQ_QUEUES = live_queues  # Redis is back
    services.retry_analysis(analysis)
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.QUEUED
    assert gpu_queue().count == 1


def test_log_in_works_while_redis_is_out_of_reach(settings, dead_redis_url):
    get_user_model().objects.create_user("ada", password="a-long-passphrase-42")
    stop_redis_for(settings, dead_redis_url)
    client = Client()

    response = client.post(
        "/accounts/login/", {"username": "ada", "password": "a-long-passphrase-42"}
    )

    assert response.status_code == 302
    assert client.get("/workspace/").status_code == 200
