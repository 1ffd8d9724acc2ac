"""The media storage full while an upload is stored: a 507 with a sentence, and nothing of the
upload left behind, neither a row nor a partly written file; with room again, it is stored.

The storage is a small tmpfs mounted for the test (root only: elsewhere the test is skipped),
filled with a file of the test's own until exactly the room it wants is left."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from apps.analysis import services
from apps.analysis.models import Analysis
from tests.analysis.conftest import painting_bytes, upload

pytestmark = pytest.mark.django_db

TMPFS_BYTES = 4 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path, settings) -> Path:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    settings.MEDIA_ROOT = mount / "media"
    settings.MEDIA_ROOT.mkdir()
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def leave_room(disk: Path, room: int) -> Path:
    """Fill `disk` with one file until `room` bytes (rounded to its blocks) are left."""
    filler = disk / "filler"
    filler.write_bytes(b"")
    free = _free(disk)
    filler.write_bytes(b"\0" * (free - room))
    assert abs(_free(disk) - room) <= 8192, (_free(disk), room)
    return filler


def _free(disk: Path) -> int:
    stats = os.statvfs(disk)
    return stats.f_bavail * stats.f_frsize


def media_files(disk: Path) -> list[str]:
    return sorted(str(path.relative_to(disk)) for path in disk.rglob("*") if path.is_file())


@pytest.mark.parametrize(
    "room",
    [
        pytest.param(lambda image: len(image) // 3, id="the-image-itself-breaks-off"),
        pytest.param(lambda image: len(image) + 16384, id="the-thumbnail-finds-no-room"),
    ],
)
def test_an_upload_to_a_full_disk_is_refused_with_a_sentence_and_leaves_nothing(
    api, models, small_disk, redis_connection, room
):
    image = painting_bytes(900, 700)  # random pixels: a JPEG of about 600 kB
    filler = leave_room(small_disk, room(image))

    response = upload(api, image)

    assert response.status_code == 507, response.content[:300]
    assert response.json() == {
        "error": "storage_full",
        "detail": "The server has no room to store the file just now, so nothing was stored; "
        "try again later.",
    }
    assert not Analysis.objects.exists()
    assert media_files(small_disk) == ["filler"]

    filler.unlink()
    stored = upload(api, image)

    assert stored.status_code == 202, stored.content[:300]
    assert len(media_files(small_disk)) == 3  # the image, its thumbnail and its reduced copy


def test_copies_the_worker_cannot_store_fail_the_analysis_and_keep_the_upload(
    api, models, corpus, small_disk, redis_connection, settings
):
    """A large upload is kept as it came for the worker; a disk full when the worker writes
    its copies fails the analysis with the sentence, leaves no copy, and keeps the upload
    for "Try again"."""
    settings.ANALYSIS_REQUEST_DECODE_PIXELS = 10_000
    image = painting_bytes(320, 240, "PNG")
    filler = leave_room(small_disk, len(image) + 16384)
    response = upload(api, image, name="large.png")
    assert response.status_code == 202, response.content[:300]
    analysis = Analysis.objects.get(pk=response.json()["id"])
    received = str(Path(analysis.received.path).relative_to(small_disk))
    leave_room(small_disk, 4096)

    services.run_analysis(str(analysis.pk))

    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.FAILED
    assert analysis.error == (
        "The analysis failed: The server has no room to store the file just now, so nothing "
        "was stored; try again later."
    )
    assert media_files(small_disk) == sorted(["filler", received])
    filler.unlink()
    services.retry_analysis(analysis)
    services.run_analysis(str(analysis.pk))
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.DONE, analysis.error
    assert len(media_files(small_disk)) == 3
