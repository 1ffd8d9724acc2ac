"""Upload validation: real images pass clean; everything else gets one sentence."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageCms

from apps.analysis.uploads import InvalidImage, validate_image

LIMITS = {"max_bytes": 20_000_000, "max_pixels": 50_000_000}


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def painting(width: int = 320, height: int = 200) -> Image.Image:
    image = Image.new("RGB", (width, height), (200, 180, 40))
    image.paste((20, 40, 160), (0, 0, width // 2, height // 3))
    return image


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "TIFF", "GIF"])
def test_each_accepted_format_is_read(image_format):
    clean = validate_image(encode(painting(), image_format), **LIMITS)

    assert (clean.width, clean.height) == (320, 200)
    assert clean.image.mode == "RGB"
    assert clean.source_format == image_format


def test_gif_uses_the_first_frame():
    first, second = Image.new("RGB", (64, 64), (255, 0, 0)), Image.new("RGB", (64, 64), (0, 0, 255))
    data = encode(first, "GIF", save_all=True, append_images=[second])

    clean = validate_image(data, **LIMITS)

    red, _green, blue = clean.image.getpixel((10, 10))
    assert red > 200
    assert blue < 50


def test_exif_orientation_is_applied_and_metadata_stripped():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "Camera maker that must not survive"
    data = encode(painting(320, 200), "JPEG", exif=exif, comment=b"private note")

    clean = validate_image(data, **LIMITS)

    assert (clean.width, clean.height) == (200, 320)
    stored = Image.open(io.BytesIO(clean.content))
    assert not stored.getexif()
    assert b"private note" not in clean.content
    assert b"Camera maker" not in clean.content


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_upright_jpeg_is_stored_as_uploaded_without_its_metadata(progressive):
    exif = Image.Exif()
    exif[0x010F] = "Camera maker that must not survive"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(
        Image.effect_noise((320, 200), 40).convert("RGB"),
        "JPEG",
        quality=75,
        progressive=progressive,
        exif=exif,
        comment=b"private note",
        xmp=b"<x:xmpmeta>private xmp</x:xmpmeta>",
        icc_profile=icc,
    )

    clean = validate_image(data, **LIMITS)

    for private in (b"Camera maker", b"private note", b"private xmp"):
        assert private not in clean.content
    stored = Image.open(io.BytesIO(clean.content))
    assert not stored.getexif()
    assert stored.info["icc_profile"] == icc
    # The same compressed data: no second generation of JPEG loss.
    assert np.array_equal(np.asarray(stored), np.asarray(Image.open(io.BytesIO(data))))
    assert (clean.width, clean.height, clean.extension) == (320, 200, "jpg")


def test_preview_size_decodes_a_jpeg_at_reduced_scale_but_keeps_it_whole():
    data = encode(painting(1600, 1000), "JPEG")

    clean = validate_image(data, **LIMITS, preview_size=(200, 200))

    assert clean.image.size == (400, 250)  # 1/4, the smallest DCT scale covering 200 x 200
    assert (clean.width, clean.height) == (1600, 1000)
    assert Image.open(io.BytesIO(clean.content)).size == (1600, 1000)


def test_cmyk_jpeg_is_reencoded_as_rgb():
    data = encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG")

    clean = validate_image(data, **LIMITS)

    assert Image.open(io.BytesIO(clean.content)).mode == "RGB"
    red, green, blue = clean.image.getpixel((5, 5))
    assert red > 200
    assert max(green, blue) < 60


def test_transparency_is_composited_over_white():
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))

    clean = validate_image(encode(image, "PNG"), **LIMITS)

    assert clean.image.getpixel((5, 5)) == (255, 255, 255)


def svg() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'


def truncated_jpeg() -> bytes:
    data = encode(painting(640, 480), "JPEG")
    return data[: len(data) // 2]


def jpeg_with_zip_appended() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("payload.html", "<script>alert(1)</script>")
    return encode(painting(), "JPEG") + archive.getvalue()


def png_with_html_appended() -> bytes:
    return encode(painting(), "PNG") + b"<html><script>alert(1)</script></html>"


def strip() -> bytes:
    return encode(Image.new("L", (100_000, 1)), "PNG")


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", "empty_file", "empty"),
        (b"%PDF-1.7 not an image at all", "not_an_image", "not a JPEG, PNG, WebP, TIFF or GIF"),
        (svg(), "unsupported_format", "SVG"),
        (truncated_jpeg(), "corrupt_image", "truncated or corrupt"),
        (jpeg_with_zip_appended(), "polyglot", "other data after the end of the JPEG"),
        (png_with_html_appended(), "polyglot", "other data after the end of the PNG"),
        (strip(), "bad_dimensions", "100,000 × 1 px"),
        (encode(painting(10, 10), "PNG"), "bad_dimensions", "at least 32 px"),
    ],
    ids=["empty", "pdf", "svg", "truncated", "jpeg+zip", "png+html", "strip", "tiny"],
)
def test_bad_uploads_are_refused_with_a_sentence(data, code, words):
    with pytest.raises(InvalidImage) as refused:
        validate_image(data, **LIMITS)

    assert refused.value.code == code
    assert words in str(refused.value)


def test_file_size_limit():
    data = encode(painting(), "PNG")

    with pytest.raises(InvalidImage, match="the limit is") as refused:
        validate_image(data, max_bytes=len(data) - 1, max_pixels=50_000_000)

    assert refused.value.code == "file_too_large"


def test_pixel_limit_is_checked_from_the_header():
    data = encode(painting(4000, 3000), "JPEG", quality=20)

    with pytest.raises(InvalidImage) as refused:
        validate_image(data, max_bytes=20_000_000, max_pixels=10_000_000)

    assert refused.value.code == "too_many_pixels"


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")  # 400 Mpx in a few kB

    with pytest.raises(InvalidImage) as refused:
        validate_image(bomb, max_bytes=20_000_000, max_pixels=10**12)

    assert refused.value.code == "too_many_pixels"
