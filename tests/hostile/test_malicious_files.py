"""Every file of `tests.hostile.files` uploaded through the API, and a representative part of
them through the workspace's form: each gets its expected answer, a refusal stores nothing
(no row, no file, no job) and an accepted file is analysed like any painting, from a stored
copy that carries none of the upload's payload or metadata.

Uploads are sent as multipart bodies written here rather than by Django's test client, which
would strip the directories off a file name before the server saw it: the path traversal,
the NUL and the 300 characters reach the server as an attacker would send them.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from PIL import Image, ImageOps

from apps.analysis import services
from apps.analysis.models import Analysis
from apps.analysis.uploads import InvalidImage, validate_image
from tests.analysis.test_upload_hardening import assert_clean
from tests.hostile.files import BY_NAME, HOSTILE_FILES, PAYLOAD_MARKER, HostileFile
from tests.hostile.http import post_multipart

pytestmark = pytest.mark.django_db

WORKSPACE_SUBSET = (
    "svg_with_script",
    "jpeg_zip_polyglot",
    "gif_script_ending_in_semicolon",
    "png_bomb_64_megapixels",
    "png_strip_100000_by_1",
    "tiff_tile_size_not_matching_the_image",
    "heic_photo",
    "jpeg_truncated",
    "cmyk_progressive_jpeg",
    "png_16_bit_greyscale",
    "jpeg_icc_profile_of_600_kb_garbage",
    "name_with_path_traversal",
)


def post(client, path: str, item: HostileFile, **fields: str):
    return post_multipart(client, path, image=(item.filename, item.data), **fields)


def stored_files(media: Path) -> list[Path]:
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


def queued_job_ids() -> list[str]:
    return [job for name in settings.RQ_QUEUES for job in django_rq.get_queue(name).job_ids]


def assert_nothing_stored(media: Path) -> None:
    assert not Analysis.objects.exists()
    assert stored_files(media) == []
    assert queued_job_ids() == []


def assert_a_sentence(text: str) -> None:
    assert len(text) > 10, text
    assert text.rstrip().endswith("."), text
    assert "Traceback" not in text


def upright_size(data: bytes) -> tuple[int, int]:
    """The image's size as a viewer shows it (its valid EXIF rotation applied)."""
    with Image.open(io.BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).size


def assert_analysed(analysis: Analysis, item: HostileFile, media: Path) -> None:
    """An accepted file: a sane size, clean stored copies inside the media root, one job.

    An image too large to prepare in the request is kept as it came, under a name of no image
    type, until the worker's first step (`prepare_upload`, run here in-process) makes the
    copies from it and deletes it."""
    if not analysis.prepared:
        received = Path(analysis.received.path).resolve()
        assert received.is_relative_to(media.resolve())
        assert received.suffix == ".upload"
        assert received.read_bytes() == item.data
        assert services.prepare_upload(analysis)
        assert not received.exists()
        analysis.refresh_from_db()
    assert (analysis.width, analysis.height) == upright_size(item.data)
    assert min(analysis.width, analysis.height) >= 32
    assert analysis.width * analysis.height <= settings.ANALYSIS_MAX_PIXELS
    for forbidden in ("/", "\\", "\x00"):
        assert forbidden not in analysis.original_filename
    assert 0 < len(analysis.original_filename) <= 255
    for field, copy in (("image", True), ("thumbnail", False), ("reduced", False)):
        stored = Path(getattr(analysis, field).path).resolve()
        assert stored.is_relative_to(media.resolve())
        data = stored.read_bytes()
        assert PAYLOAD_MARKER not in data
        assert_clean(data, stored_copy=copy)
    with Image.open(analysis.image.path) as stored_image:
        assert stored_image.size == (analysis.width, analysis.height)
    assert len(stored_files(media)) == 3
    assert queued_job_ids() == [analysis.job_id]


@pytest.mark.parametrize("item", HOSTILE_FILES, ids=lambda item: item.name)
def test_each_hostile_file_uploaded_to_the_api_gets_its_answer(
    api, media, redis_connection, django_capture_on_commit_callbacks, item
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, "/api/v1/analyses", item, model="paintingclip")

    assert response.status_code == item.status, (response.status_code, response.content[:300])
    body = response.json()
    if item.accepted:
        assert body["status"] == "queued"
        assert_analysed(Analysis.objects.get(pk=body["id"]), item, media)
    else:
        assert set(body) == {"error", "detail"}
        assert body["error"] == item.error
        assert_a_sentence(body["detail"])
        assert_nothing_stored(media)


@pytest.mark.parametrize("name", WORKSPACE_SUBSET)
def test_the_workspace_form_answers_hostile_files_the_same_way(
    client, api, media, redis_connection, django_capture_on_commit_callbacks, name
):
    item = BY_NAME[name]
    client.force_login(api.user)

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "/workspace/", item, model="paintingclip")

    if item.accepted:
        assert response.status_code == 302, response.content[:300]
        assert_analysed(Analysis.objects.get(), item, media)
        return
    assert response.status_code == item.status
    with pytest.raises(InvalidImage) as refused:
        validate_image(item.data, max_bytes=10**9, max_pixels=settings.ANALYSIS_MAX_PIXELS)
    assert refused.value.code == item.error
    assert html.escape(refused.value.sentence) in response.content.decode()
    assert_nothing_stored(media)


def test_the_collection_holds_every_class_of_hostile_file():
    """At least 25 files, distinct bytes for distinct makers, none over about 1 MB, and the
    same bytes each time they are built (the test ids and the manual trials rely on it)."""
    assert len(HOSTILE_FILES) >= 25
    assert all(len(item.data) <= 1_100_000 for item in HOSTILE_FILES)
    for item in HOSTILE_FILES:
        item.make.cache_clear()
        first = item.make()
        item.make.cache_clear()
        assert item.make() == first, item.name
    refusals = {item.error for item in HOSTILE_FILES if not item.accepted}
    assert {"empty_file", "unsupported_format", "polyglot", "too_many_pixels"} <= refusals
    assert {"bad_dimensions", "corrupt_image", "not_an_image"} <= refusals


def test_the_cli_writes_every_file_with_a_manifest(tmp_path, capsys):
    from tests.hostile.files import main

    assert main([str(tmp_path)]) == 0

    written = sorted(path for path in tmp_path.iterdir() if path.name != "manifest.json")
    assert len(written) == len(HOSTILE_FILES)
    assert f"[{len(HOSTILE_FILES)}/{len(HOSTILE_FILES)}]" in capsys.readouterr().out
    assert (tmp_path / "manifest.json").exists()
    assert {path.read_bytes() for path in written} == {item.data for item in HOSTILE_FILES}
