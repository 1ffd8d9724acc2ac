"""Per-researcher upload quotas: analyses queued or running at once, and uploads per hour,
refused with 429 and a sentence by the API and by the workspace page alike, and holding for
uploads sent in parallel (whose rows do not exist yet while their images are decoded)."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from apps.analysis import services
from apps.analysis.models import Analysis
from tests.analysis.conftest import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def quotas(settings, media, redis_connection):
    settings.ANALYSIS_MAX_ACTIVE_JOBS = 2
    settings.ANALYSIS_UPLOADS_PER_HOUR = 3
    return settings


def refused(response, code: str) -> str:
    assert response.status_code == 429, response.content[:300]
    body = response.json()
    assert body["error"] == code
    return body["detail"]


def test_no_more_analyses_than_the_limit_wait_or_run_at_once(api, quotas):
    first, _second = (upload(api).json()["id"] for _ in range(2))

    detail = refused(upload(api), "too_many_active")
    assert detail == (
        "You have 2 analyses queued or running, the most at once; wait for one to finish, "
        "or cancel one, then upload again."
    )
    Analysis.objects.filter(pk=first).update(status=Analysis.Status.DONE)
    assert upload(api).status_code == 202


def test_no_more_uploads_per_hour_than_the_limit(api, quotas):
    for _ in range(3):
        assert upload(api).status_code == 202
        Analysis.objects.update(status=Analysis.Status.DONE)

    detail = refused(upload(api), "upload_quota")
    assert detail == "You have uploaded 3 images in the last hour, the limit; try again later."
    Analysis.objects.update(created_at=timezone.now() - timedelta(hours=1, minutes=1))
    assert upload(api).status_code == 202


def test_each_researcher_has_a_quota_of_their_own(api, quotas, django_user_model):
    upload(api), upload(api)
    other = APIClient()
    other.force_authenticate(django_user_model.objects.create_user("someone-else"))

    assert upload(other).status_code == 202


def test_the_workspace_page_shows_the_refusal_beside_the_form(client, api, quotas):
    upload(api), upload(api)
    client.force_login(api.user)
    image = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(image, "PNG")
    image.seek(0)
    image.name = "painting.png"

    response = client.post("/workspace/", {"model": "paintingclip", "image": image})

    assert response.status_code == 429
    assert "the most at once; wait for one to finish" in response.content.decode()


def big_png() -> bytes:
    """A few kilobytes that take a web thread a good part of a second to decode and
    re-encode: the kind of upload that, sent in parallel, held every thread."""
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 255, size=(60, 60, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).resize((2000, 2000)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.django_db(transaction=True)
def test_uploads_sent_in_parallel_are_counted_while_they_are_decoded(api, quotas):
    quotas.ANALYSIS_REQUEST_DECODE_PIXELS = 10**9  # decoded in the request, however large
    data = big_png()
    statuses: list[int] = []

    def send() -> None:
        client = APIClient()
        client.force_authenticate(api.user)
        try:
            statuses.append(upload(client, data, name="big.png").status_code)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # At most the limit gets through (one, when a refused upload was still being counted as
    # another one checked); every other is refused, none fails.
    accepted = statuses.count(202)
    assert 1 <= accepted <= 2, statuses
    assert statuses.count(429) == 6 - accepted, statuses
    assert Analysis.objects.filter(owner=api.user).count() == statuses.count(202)


@pytest.mark.django_db(transaction=True)
def test_uploads_past_the_parallel_decodes_of_a_process_are_refused_whoever_sends_them(
    api, settings, media, redis_connection, django_user_model
):
    """Researchers within their own quotas still cannot hold every web thread together."""
    settings.ANALYSIS_PARALLEL_DECODES = 1
    settings.ANALYSIS_REQUEST_DECODE_PIXELS = 10**9  # decoded in the request, however large
    other = django_user_model.objects.create_user("another-researcher")
    statuses: list[int] = []

    def send_large() -> None:
        client = APIClient()
        client.force_authenticate(other)
        try:
            statuses.append(upload(client, big_png(), name="big.png").status_code)
        finally:
            connection.close()  # this thread's own connection

    decoding = threading.Thread(target=send_large)
    decoding.start()
    deadline = time.monotonic() + 30
    while services._decoding == 0:  # the large upload is being decoded
        assert decoding.is_alive(), statuses
        assert time.monotonic() < deadline
        time.sleep(0.005)
    refused = upload(api)
    decoding.join()

    assert refused.status_code == 503, refused.content[:300]
    assert refused.json()["error"] == "busy"
    assert refused.json()["detail"].startswith("The server is preparing other uploads just now")
    assert not Analysis.objects.filter(owner=api.user).exists()
    assert statuses == [202]
    assert upload(api).status_code == 202  # the slot is free again
