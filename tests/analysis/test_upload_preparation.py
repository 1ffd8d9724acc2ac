"""Where an upload's stored copies are made: in the request for small images and JPEGs kept
as they came, in the model worker for large images whose copies need every pixel decoded
(`ANALYSIS_REQUEST_DECODE_PIXELS`). A 7000 × 7000 PNG once took seconds of a web thread."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apps.analysis.models import Analysis
from tests.analysis.conftest import finished, painting_bytes, upload
from tests.analysis.test_upload_hardening import SECRET, png_with_everything

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def small_limit(settings, media, redis_connection):
    """Anything over 10,000 px that needs its pixels is prepared by the worker."""
    settings.ANALYSIS_REQUEST_DECODE_PIXELS = 10_000
    return settings


def corrupt_past_its_header() -> bytes:
    """A PNG whose chunks, sizes and end are all in order but whose compressed pixels are
    zeroed in the middle: only decoding them shows it."""
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    pixels = data.index(b"IDAT") + 4
    data[pixels + 100 : pixels + 400] = bytes(300)
    return bytes(data)


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def test_a_large_upload_is_checked_in_the_request_and_prepared_by_the_worker(
    api, client, corpus, workers, small_limit, media
):
    data = png_with_everything()  # 320 × 240, with EXIF, XMP, text and a colour profile

    response = upload(api, data, name="large.png")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["width"], body["height"]) == (320, 240)
    assert body["image_url"] is None
    assert body["thumbnail_url"] is None
    analysis = Analysis.objects.get(pk=body["id"])
    assert not analysis.prepared
    # Only the file as it came is stored, under a name of no image type, and it is not served.
    assert [path.name for path in files_under(media)] == [Path(analysis.received.name).name]
    assert Path(analysis.received.path).read_bytes() == data
    assert Path(analysis.received.name).suffix == ".upload"
    refused = api.get(f"/api/v1/analyses/{analysis.pk}/image")
    assert refused.status_code == 404
    assert refused.json()["error"] == "image_not_prepared"
    client.force_login(api.user)
    page = client.get(f"/analyses/{analysis.pk}/").content.decode()
    assert "is being prepared" in page
    assert "af-stage-image" not in page
    assert "data-crop-toggle" not in page
    assert 'class="af-history-pending"' in client.get("/history/").content.decode()

    result = workers.burst()
    assert result.returncode == 0, result.stderr

    body = finished(api, analysis.pk)
    assert body["status"] == "done", body["error"]
    assert body["image_url"].endswith(f"/api/v1/analyses/{analysis.pk}/image")
    analysis.refresh_from_db()
    assert analysis.prepared
    assert not analysis.received
    stored = files_under(media)
    assert {path.suffix for path in stored} == {".png", ".jpg", ".ppm"}, stored
    for path in stored:
        assert SECRET not in path.read_bytes(), path
    image = api.get(body["image_url"])
    assert image.status_code == 200
    with Image.open(io.BytesIO(b"".join(image.streaming_content))) as served:
        assert served.size == (320, 240)
        assert not served.info.get("icc_profile")
        assert "Comment" not in served.info


def test_data_found_corrupt_by_the_worker_fails_the_analysis_with_the_uploads_sentence(
    api, client, corpus, workers, small_limit, media
):
    response = upload(api, corrupt_past_its_header(), name="broken.png")

    assert response.status_code == 202, response.json()  # the header is sound
    result = workers.burst()
    assert result.returncode == 0, result.stderr

    body = finished(api, response.json()["id"])
    assert body["status"] == "failed"
    assert body["error"] == "The upload could not be used: The image data is truncated or corrupt."
    assert files_under(media) == []  # the file as received is gone too
    client.force_login(api.user)
    again = client.post(f"/analyses/{body['id']}/retry", follow=True)
    assert "there is nothing to analyse again" in again.content.decode()
    assert Analysis.objects.get(pk=body["id"]).status == Analysis.Status.FAILED


def test_header_faults_are_still_refused_in_the_request(api, small_limit, media):
    data = corrupt_past_its_header() + b"PK\x03\x04 an archive after the image"

    response = upload(api, data, name="polyglot.png")

    assert response.status_code == 400
    assert response.json()["error"] == "polyglot"
    assert files_under(media) == []
    assert not Analysis.objects.exists()


def test_jpegs_kept_as_they_came_and_small_images_are_prepared_in_the_request(
    api, small_limit, media
):
    jpeg = upload(api, painting_bytes(320, 240, "JPEG"), name="large.jpg")
    small_limit.ANALYSIS_REQUEST_DECODE_PIXELS = 100_000
    png = upload(api, painting_bytes(320, 240, "PNG"), name="small.png")

    for response in (jpeg, png):
        assert response.status_code == 202, response.json()
        analysis = Analysis.objects.get(pk=response.json()["id"])
        assert analysis.prepared
        assert not analysis.received
        assert response.json()["thumbnail_url"] is not None
