"""Hostile uploads and what is stored and served from them: no metadata in any stored
derivative, TIFF polyglots refused, stored files served with safe headers, and the odd inputs
of the analysis API (empty values, nested ids, a second image)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageCms

from apps.analysis import services
from apps.analysis.models import Analysis, Heatmap
from apps.analysis.uploads import InvalidImage, _jpeg_segments, validate_image
from tests.analysis.conftest import painting_bytes, upload

pytestmark = pytest.mark.django_db

SECRET = b"GPS 51.5N secret-camera-serial"
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>' + SECRET + b"</rdf:RDF></x:xmpmeta>"


def pixels(width: int = 320, height: int = 240) -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8))


def exif() -> Image.Exif:
    tags = Image.Exif()
    tags[0x010F] = SECRET.decode()  # camera make
    tags[0x0131] = "PhotoEditor 9"
    return tags


def jpeg_with_everything() -> bytes:
    buffer = io.BytesIO()
    pixels().save(buffer, "JPEG", exif=exif(), icc_profile=ICC, comment=SECRET, xmp=XMP)
    return buffer.getvalue()


def png_with_everything() -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    buffer = io.BytesIO()
    pixels().save(buffer, "PNG", pnginfo=info, exif=exif(), icc_profile=ICC)
    return buffer.getvalue()


def jpeg_metadata(data: bytes) -> list[bytes]:
    """The comment and application segments of a JPEG, each as marker and first bytes."""
    return [
        bytes([marker]) + data[start + 4 : start + 18]
        for marker, start, _end in _jpeg_segments(data)
        if marker == 0xFE or 0xE0 <= marker <= 0xEF
    ]


def bare_jfif(segment: bytes) -> bool:
    """The JFIF header Pillow writes into every JPEG: a version and a pixel density, and no
    embedded thumbnail (its width and height are 0)."""
    return segment.startswith(b"\xe0JFIF\x00") and segment[13:15] == b"\x00\x00"


def png_chunks(data: bytes) -> list[bytes]:
    chunks, position = [], 8
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        chunks.append(data[position + 4 : position + 8])
        position += 12 + length
    return chunks


def assert_clean(data: bytes, *, stored_copy: bool = False) -> None:
    """No metadata beyond the rule: only the stored copy of a JPEG kept as uploaded may hold
    its ICC profile (and Adobe's colour note); derivatives hold nothing but a bare JFIF
    header."""
    assert SECRET not in data
    assert b"PhotoEditor" not in data
    if data[:2] == b"\xff\xd8":
        allowed = (b"\xe2ICC_PROFILE", b"\xeeAdobe") if stored_copy else ()
        assert [
            segment
            for segment in jpeg_metadata(data)
            if not segment.startswith(allowed) and not bare_jfif(segment)
        ] == []
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        assert set(png_chunks(data)) <= {b"IHDR", b"IDAT", b"IEND"}, png_chunks(data)
    else:
        assert data[:2] == b"P6"  # the reduced copy: a bare PPM header, then pixels
        assert b"#" not in data[:32]


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("curator")


@pytest.mark.parametrize("make", [jpeg_with_everything, png_with_everything])
def test_no_stored_derivative_carries_the_uploads_metadata(owner, media, redis_connection, make):
    data = make()
    assert SECRET in data  # the upload really carries it
    analysis = services.create_analysis(
        owner=owner, data=data, filename="p", model_key="paintingclip"
    )

    stored = {name: getattr(analysis, name).read() for name in ("image", "thumbnail", "reduced")}
    assert_clean(stored["image"], stored_copy=True)
    assert_clean(stored["thumbnail"])
    assert_clean(stored["reduced"])

    heatmap = Heatmap.objects.create(
        analysis=analysis,
        model_key="paintingclip",
        text="boat",
        text_digest=services.text_digest("boat"),
        rows=7,
        cols=7,
        values=np.linspace(0, 1, 49, dtype=np.float32).tobytes(),
    )
    assert_clean(services.render_heatmap_png(heatmap))
    assert_clean(services.render_heatmap_png(heatmap, max_side=128))


def tiff(**options) -> bytes:
    buffer = io.BytesIO()
    pixels().save(buffer, "TIFF", **options)
    return buffer.getvalue()


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buffer.getvalue()


LIMITS = {"max_bytes": 20_000_000, "max_pixels": 50_000_000}


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"compression": "tiff_lzw"},
        {"compression": "tiff_adobe_deflate"},
        {"big_tiff": True},
        {"exif": exif()},
        {"save_all": True, "append_images": [pixels(200, 300)]},
    ],
)
def test_a_tiff_with_a_zip_appended_is_refused_as_a_polyglot(options):
    plain = tiff(**options)
    assert validate_image(plain, **LIMITS).width == 320
    assert validate_image(plain + b"\x00" * 16, **LIMITS).width == 320  # padding is no payload

    with pytest.raises(InvalidImage) as refused:
        validate_image(plain + zip_archive(), **LIMITS)

    assert refused.value.code == "polyglot"
    assert "after the end of the TIFF image" in refused.value.sentence


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow, reading the broken file
def test_a_tiff_whose_directories_point_outside_the_file_is_refused():
    data = bytearray(tiff())
    data[4:8] = (len(data) + 1000).to_bytes(4, "little")  # the first IFD lies past the end

    with pytest.raises(InvalidImage):
        validate_image(bytes(data), **LIMITS)


def test_stored_images_are_served_as_images_inline_under_their_stored_name(api, media):
    analysis_id = upload(api, name="<script>.jpg").json()["id"]

    for query in ("", "?size=thumbnail"):
        response = api.get(f"/api/v1/analyses/{analysis_id}/image{query}")
        assert response["Content-Type"] == "image/jpeg"
        assert response["X-Content-Type-Options"] == "nosniff"
        disposition = response["Content-Disposition"]
        assert disposition.startswith("inline; filename=")
        assert "script" not in disposition


def test_a_stored_file_of_any_other_type_is_sent_as_a_download(api, media):
    analysis = Analysis.objects.get(pk=upload(api).json()["id"])
    analysis.image.save("figure.svg", ContentFile(b"<svg onload='alert(1)'/>"))

    response = api.get(f"/api/v1/analyses/{analysis.pk}/image")

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")


def test_an_empty_crop_is_no_crop(api, media):
    response = upload(api, crop="")

    assert response.status_code == 202, response.json()
    assert response.json()["crop"] is None


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("cells/0/0?k=", "analysis_not_ready"),
        ("heatmaps/s1.png?max_side=", "heatmap_not_ready"),
        ("image?size=", None),
    ],
)
def test_an_empty_query_parameter_is_not_given(api, media, query, code):
    analysis_id = upload(api).json()["id"]

    response = api.get(f"/api/v1/analyses/{analysis_id}/{query}")

    if code is None:
        assert response.status_code == 200
    else:
        assert response.json()["error"] == code


@pytest.mark.parametrize("ids", [[["a"]], [{"id": "a"}], [None], [True], "", {"a": 1}])
def test_sentence_ids_must_be_strings(api, media, ids):
    analysis_id = upload(api).json()["id"]

    response = api.post(
        f"/api/v1/analyses/{analysis_id}/heatmaps", {"sentence_ids": ids}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["detail"].startswith("sentence_ids:")


def test_a_second_image_in_one_upload_is_refused(api, media):
    first, second = io.BytesIO(painting_bytes()), io.BytesIO(painting_bytes(400, 300))
    first.name, second.name = "first.jpg", "second.jpg"

    response = api.post("/api/v1/analyses", {"image": [first, second]}, format="multipart")

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid",
        "detail": "image: Send one file per request; this one holds 2 under this name.",
    }
    assert not Analysis.objects.exists()


def test_the_workspace_refuses_a_second_image_too(client, api, media):
    client.force_login(api.user)
    first, second = io.BytesIO(painting_bytes()), io.BytesIO(painting_bytes(400, 300))
    first.name, second.name = "first.jpg", "second.jpg"

    response = client.post("/workspace/", {"model": "paintingclip", "image": [first, second]})

    assert response.status_code == 400
    assert "Choose one painting at a time." in response.content.decode()
    assert not Analysis.objects.exists()
