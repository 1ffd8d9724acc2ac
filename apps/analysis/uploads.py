"""Validation of uploaded images: accept real raster images only, and keep a clean copy.

Everything a researcher can upload ends up decoded by Pillow and fed to a model, so the checks
are strict and each failure is one sentence the API returns with HTTP 400:

* only JPEG, PNG, WebP, TIFF and GIF (first frame), sniffed from the bytes, not the name;
* file size and pixel count limits from settings, with Pillow's decompression-bomb guard on;
* no degenerate shapes (a 100 000 × 1 px strip has nothing to analyse);
* no truncated data, and no *polyglots* — files that are a valid image and something else,
  detected as bytes trailing the image's own end marker (for TIFF, which has none, the last
  byte its directories use);
* no metadata (GPS, camera, embedded thumbnails, comments) in the stored copy, nor in anything
  made from its pixels (`CleanImage.image` carries none). An upright
  RGB or greyscale JPEG keeps its compressed data byte for byte, without the segments that
  hold metadata: no second generation of JPEG loss, and no full-size decode and re-encode (for
  a 3,800-px painting, most of the upload's time). Anything else has its EXIF orientation
  applied and its pixels re-encoded.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from apps.core.errors import ApplicationError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "GIF")
MIN_SIDE = 32
MAX_ASPECT_RATIO = 20.0
FORMAT_NAMES = "JPEG, PNG, WebP, TIFF or GIF"


class InvalidImage(ApplicationError):
    """An upload that is not an acceptable image; ``str()`` is the sentence for the user."""


ORIENTATION_TAG = 0x0112
LOSSLESS_JPEG_MODES = ("RGB", "L")
"""JPEG modes stored as uploaded: CMYK files are converted, as browsers show them unreliably."""

KEPT_JPEG_APP_SEGMENTS = ((0xE2, b"ICC_PROFILE\x00"), (0xEE, b"Adobe"))
"""Application segments a decoder or viewer needs: the colour profile, and Adobe's note of the
colour transform (without it some files decode with wrong colours). Every other APPn segment
(JFIF, EXIF, XMP, IPTC, vendor data) and every comment is metadata and is dropped."""
_SIGNATURE_LENGTH = max(len(signature) for _, signature in KEPT_JPEG_APP_SEGMENTS)


@dataclass(frozen=True)
class CleanImage:
    """A validated upload: its upright size, its pixels (RGB, upright; decoded at a reduced
    scale when `validate_image` was given a `preview_size`) and a metadata-free encoding."""

    image: Image.Image
    width: int
    height: int
    source_format: str
    content: bytes
    extension: str


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _looks_like_markup(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<?xml", b"<svg", b"<!doctype", b"<html"))


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each marker after SOI, up to and including EOI. A scan (SOS)
    runs to the end of its entropy-coded data, so that EOI bytes inside it or inside embedded
    thumbnails are not mistaken for the end. Stops early, without EOI, where the data breaks
    off or stops looking like JPEG."""
    position = 2
    length = len(data)
    while position + 2 <= length:
        if data[position] != 0xFF:
            return
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, 0xD9, *range(0xD0, 0xD8)):  # markers without a length
            yield marker, position, position + 2
            if marker == 0xD9:
                return
            position += 2
            continue
        if position + 4 > length:
            return
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:
            end = _next_marker(data, end)
        if end is None or end > length:
            return
        yield marker, position, end
        position = end


def _jpeg_end(data: bytes) -> int | None:
    """Offset just past the JPEG's EOI marker."""
    for marker, _start, end in _jpeg_segments(data):
        if marker == 0xD9:
            return end
    return None


def _is_jpeg_metadata(marker: int, payload: bytes, *, keep_icc: bool = True) -> bool:
    if marker == 0xFE:  # comment
        return True
    if 0xE0 <= marker <= 0xEF:
        return not any(
            marker == kept and payload.startswith(signature)
            for kept, signature in KEPT_JPEG_APP_SEGMENTS
            if keep_icc or kept != 0xE2
        )
    return False


def _jpeg_without_metadata(data: bytes, *, keep_icc: bool = True) -> bytes | None:
    """The JPEG with its metadata segments dropped and everything its decoder reads (tables,
    frame header, scans) copied unchanged; None if its segments cannot be walked to EOI.
    Without `keep_icc`, the colour profile's segments are dropped too."""
    kept = [data[:2]]
    for marker, start, end in _jpeg_segments(data):
        # Only a segment's first bytes are read: a scan's segment runs for megabytes.
        head = data[start + 4 : start + 4 + _SIGNATURE_LENGTH]
        if not _is_jpeg_metadata(marker, head, keep_icc=keep_icc):
            kept.append(data[start:end])
        if marker == 0xD9:
            return b"".join(kept)
    return None


_ENTROPY_CODED_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7])")
"""An 0xFF byte that is neither a stuffed 0xFF00 nor a restart marker: where entropy-coded
data ends."""


def _next_marker(data: bytes, position: int) -> int | None:
    """Offset of the next marker in entropy-coded data. The regular expression scans in C, in
    one call: a Python loop over every byte took half a second for a 3 MB photograph, one
    ``bytes.find`` per 0xFF byte 2.4 ms, this 1.4 ms."""
    found = _ENTROPY_CODED_MARKER.search(data, position)
    return None if found is None else found.start()


def _png_end(data: bytes) -> int | None:
    position = 8
    while position + 8 <= len(data):
        chunk_length = int.from_bytes(data[position : position + 4], "big")
        chunk_type = data[position + 4 : position + 8]
        position += 12 + chunk_length
        if chunk_type == b"IEND":
            return position
    return None


def _webp_end(data: bytes) -> int | None:
    if len(data) < 12:
        return None
    return 8 + int.from_bytes(data[4:8], "little")


def _gif_sub_blocks_end(data: bytes, position: int) -> int | None:
    """Offset just past the zero-length block that ends a chain of data sub-blocks."""
    while position < len(data):
        size = data[position]
        position += 1 + size
        if size == 0:
            return position
    return None


def _colour_table_size(packed: int) -> int:
    return 3 * (2 ** ((packed & 0x07) + 1)) if packed & 0x80 else 0


def _gif_end(data: bytes) -> int | None:
    """Offset just past the GIF's trailer, found by walking its blocks: the last 0x3B byte
    of the file is no end marker when the bytes after the image end in one (a script's
    ``;``). None where a block breaks off or is of no known kind."""
    if len(data) < 13:
        return None
    position = 13 + _colour_table_size(data[10])
    while position < len(data):
        introducer = data[position]
        if introducer == 0x3B:  # trailer
            return position + 1
        if introducer == 0x21:  # extension: label, then sub-blocks
            end = _gif_sub_blocks_end(data, position + 2)
        elif introducer == 0x2C and position + 10 <= len(data):  # image descriptor
            table_end = position + 10 + _colour_table_size(data[position + 9])
            end = _gif_sub_blocks_end(data, table_end + 1)  # after the LZW code size
        else:
            return None
        if end is None:
            return None
        position = end
    return None


_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_TIFF_TYPE_SIZES |= {13: 4, 16: 8, 17: 8, 18: 8}
_TIFF_IFD_TYPES = (13, 18)
_TIFF_IFD_POINTER_TAGS = (330, 34665, 34853, 40965)  # sub-IFDs, EXIF, GPS, interoperability
_TIFF_DATA_TAGS = ((273, 279), (324, 325), (513, 514), (288, 289))
"""(offsets, byte counts) of the data an IFD points at: strips, tiles, an old-style JPEG
stream, free space."""
_TIFF_MAX_IFDS = 10_000
_TIFF_STRIP_OFFSETS, _TIFF_SAMPLES_PER_PIXEL, _TIFF_ROWS_PER_STRIP = 273, 277, 278
_TIFF_STRIP_BYTE_COUNTS, _TIFF_PLANAR_CONFIG = 279, 284
_TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH, _TIFF_TILE_OFFSETS, _TIFF_TILE_BYTE_COUNTS = 322, 323, 324, 325


def _tiff_end(data: bytes) -> int | None:
    """Offset just past the last byte any IFD of the TIFF (classic or BigTIFF) uses: the IFDs
    themselves, their out-of-line values, and the strips, tiles and sub-IFDs they point at.
    A TIFF has no end marker, but nothing of it lies beyond that. None if an offset points
    outside the file or the IFDs loop without end."""
    order = {b"II": "little", b"MM": "big"}.get(data[:2])
    if order is None or len(data) < 16:
        return None

    def number(offset: int, size: int) -> int:
        if offset + size > len(data):
            raise IndexError(offset)
        return int.from_bytes(data[offset : offset + size], order)

    big = number(2, 2) == 43
    word, entry_size, count_size = (8, 20, 8) if big else (4, 12, 2)
    end = 16 if big else 8
    pending, seen = [number(8 if big else 4, word)], set()
    try:
        while pending:
            ifd = pending.pop()
            if ifd == 0 or ifd in seen:
                continue
            seen.add(ifd)
            if len(seen) > _TIFF_MAX_IFDS:
                return None
            entries = number(ifd, count_size)
            first = ifd + count_size
            end = max(end, first + entries * entry_size + word)
            values: dict[int, list[int]] = {}
            for index in range(entries):
                at = first + index * entry_size
                tag, kind, count = number(at, 2), number(at + 2, 2), number(at + 4, word)
                size = _TIFF_TYPE_SIZES.get(kind, 1)
                where = at + 4 + word
                if size * count > word:
                    where = number(where, word)
                    end = max(end, where + size * count)
                if where + size * count > len(data):
                    return None
                if (
                    tag in _TIFF_IFD_POINTER_TAGS
                    or kind in _TIFF_IFD_TYPES
                    or any(tag in pair for pair in _TIFF_DATA_TAGS)
                ):
                    values[tag] = [number(where + i * size, size) for i in range(count)]
                    if tag in _TIFF_IFD_POINTER_TAGS or kind in _TIFF_IFD_TYPES:
                        pending.extend(values[tag])
            for offsets, lengths in _TIFF_DATA_TAGS:
                for start, length in zip(
                    values.get(offsets, ()), values.get(lengths, ()), strict=False
                ):
                    end = max(end, start + length)
            pending.append(number(first + entries * entry_size, word))
    except IndexError:
        return None
    return end if end <= len(data) else None


_END_FINDERS = {
    "JPEG": _jpeg_end,
    "PNG": _png_end,
    "WEBP": _webp_end,
    "GIF": _gif_end,
    "TIFF": _tiff_end,
}


def _check_tiff_layout(image: Image.Image) -> None:
    """Refuse a TIFF whose strips or tiles do not cover its first image: Pillow decodes the
    strips and tiles it is given and leaves the rest of the image blank, without an error,
    where libtiff and viewers call such a file corrupt."""
    tags = image.tag_v2
    width, height = image.size
    planes = tags.get(_TIFF_SAMPLES_PER_PIXEL, 1) if tags.get(_TIFF_PLANAR_CONFIG) == 2 else 1
    if _TIFF_TILE_OFFSETS in tags:
        tile_width, tile_length = tags.get(_TIFF_TILE_WIDTH, 0), tags.get(_TIFF_TILE_LENGTH, 0)
        if tile_width <= 0 or tile_length <= 0:
            raise InvalidImage("corrupt_image", "The image data is truncated or corrupt.")
        needed = -(-width // tile_width) * -(-height // tile_length) * planes
        offsets, counts = _TIFF_TILE_OFFSETS, _TIFF_TILE_BYTE_COUNTS
    else:
        rows = tags.get(_TIFF_ROWS_PER_STRIP, height) or height
        needed = -(-height // rows) * planes
        offsets, counts = _TIFF_STRIP_OFFSETS, _TIFF_STRIP_BYTE_COUNTS
    if min(len(tags.get(offsets, ())), len(tags.get(counts, ()))) < needed:
        raise InvalidImage("corrupt_image", "The image data is truncated or corrupt.")


def _reject_trailing_data(data: bytes, image_format: str) -> None:
    end = _END_FINDERS[image_format](data)
    if end is None:
        raise InvalidImage("corrupt_image", "The image data is truncated or corrupt.")
    trailing = data[end:]
    if trailing.strip(b"\x00\r\n "):
        raise InvalidImage(
            "polyglot",
            f"The file holds {len(trailing)} bytes of other data after the end of the "
            f"{image_format} image; upload a plain image file.",
        )


def _encode_without_metadata(image: Image.Image, source_format: str) -> tuple[bytes, str]:
    """Re-encode the pixels alone: JPEG stays JPEG (no second generation of PNG bloat),
    everything else becomes lossless PNG."""
    buffer = io.BytesIO()
    image = image.copy()
    image.info.clear()  # Pillow would write a JPEG comment or PNG text chunks back from here
    if source_format == "JPEG":
        image.save(buffer, format="JPEG", quality=92, optimize=True)
        return buffer.getvalue(), "jpg"
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue(), "png"


@dataclass(frozen=True)
class UploadHeader:
    """What the checks that decode no pixel learn of an upload: its upright size and whether
    storing it needs its pixels (a JPEG stored as uploaded needs none)."""

    width: int
    height: int
    needs_pixels: bool


@contextlib.contextmanager
def _refusals(max_pixels: int) -> Iterator[None]:
    """Pillow's errors, and its decompression-bomb warning, as the sentences for the user.

    Pillow's own bomb guard stays on: it warns past Image.MAX_IMAGE_PIXELS and refuses past
    twice that, before decoding; the warning is an error here. Our own, lower limit is
    checked from the header alone, also before any pixel is decoded.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except InvalidImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InvalidImage(
                "too_many_pixels",
                f"The image has more than {max_pixels:,} pixels, the limit.",
            ) from None
        except UnidentifiedImageError:
            raise InvalidImage(
                "not_an_image", f"The file is not a {FORMAT_NAMES} image that can be read."
            ) from None
        except (OSError, SyntaxError, ValueError):
            raise InvalidImage("corrupt_image", "The image data is truncated or corrupt.") from None


def _open_checked(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The upload opened (its header read, no pixel decoded) after every check that needs no
    pixel: size, markup, format, shape, trailing data, a TIFF's layout. Call inside
    `_refusals`."""
    if not data:
        raise InvalidImage("empty_file", "The file is empty.")
    if len(data) > max_bytes:
        raise InvalidImage(
            "file_too_large",
            f"The file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}.",
        )
    if _looks_like_markup(data[:512]):
        raise InvalidImage(
            "unsupported_format",
            f"SVG and other markup files are not accepted; upload a {FORMAT_NAMES} image.",
        )
    image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    _check_shape(*image.size, max_pixels)
    _reject_trailing_data(data, image.format or "")
    if image.format == "TIFF":
        _check_tiff_layout(image)
    return image


_TURNED_ORIENTATIONS = (5, 6, 7, 8)
"""EXIF orientations that turn the picture by a quarter: its upright width is its height."""


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> UploadHeader:
    """Every check of `validate_image` that decodes no pixel, in milliseconds whatever the
    image's size. What only a full decode finds (data corrupt past the header) is left to
    `validate_image`.

    Raises :class:`InvalidImage` with a sentence for the user on any problem.
    """
    with _refusals(max_pixels):
        image = _open_checked(data, max_bytes=max_bytes, max_pixels=max_pixels)
        width, height = image.size
        if _header_orientation(image) in _TURNED_ORIENTATIONS:
            width, height = height, width
        return UploadHeader(
            width=width,
            height=height,
            needs_pixels=_stored_as_uploaded(data, image) is None,
        )


def _header_orientation(image: Image.Image) -> int:
    """The EXIF orientation as far as the header tells it. Pillow's ``getexif`` decodes a
    whole PNG to find an eXIf chunk after the pixels; such a rare one is seen by the full
    decode only (the stored copies then have its upright size)."""
    if image.format == "PNG":
        exif = Image.Exif()
        if raw := image.info.get("exif"):
            exif.load(raw)
        return exif.get(ORIENTATION_TAG, 1)
    return image.getexif().get(ORIENTATION_TAG, 1)


def validate_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    preview_size: tuple[int, int] | None = None,
) -> CleanImage:
    """Check an upload and return its upright RGB pixels with a metadata-free encoding.

    With `preview_size`, the caller needs the pixels only that large (a thumbnail): a JPEG
    stored as uploaded is then decoded at the smallest DCT scale that covers it. The decoder
    still reads every byte, so truncated or corrupt data is refused all the same.

    Raises :class:`InvalidImage` with a sentence for the user on any problem.
    """
    with _refusals(max_pixels):
        image = _open_checked(data, max_bytes=max_bytes, max_pixels=max_pixels)
        source_format = image.format or ""
        width, height = image.size
        as_uploaded = _stored_as_uploaded(data, image)
        if as_uploaded is not None and preview_size is not None:
            image.draft(None, preview_size)
        image.seek(0)
        image.load()

    if as_uploaded is not None:
        return CleanImage(
            image=_pixels_only(_to_rgb(image)),
            width=width,
            height=height,
            source_format=source_format,
            content=as_uploaded,
            extension="jpg",
        )
    upright = ImageOps.exif_transpose(image)
    _check_shape(upright.width, upright.height, max_pixels)
    rgb = _pixels_only(_to_rgb(upright))
    content, extension = _encode_without_metadata(rgb, source_format)
    return CleanImage(
        image=rgb,
        width=rgb.width,
        height=rgb.height,
        source_format=source_format,
        content=content,
        extension=extension,
    )


def _pixels_only(image: Image.Image) -> Image.Image:
    """`image` without the metadata Pillow carries in ``info`` (comment, EXIF, XMP, ICC):
    every derivative encoded from these pixels (thumbnail, reduced copy) would otherwise
    write some of it back, a JPEG comment for one."""
    image.info = {}
    return image


def _stored_as_uploaded(data: bytes, image: Image.Image) -> bytes | None:
    """The JPEG's bytes without metadata, when it can be stored that way: upright (an EXIF
    rotation needs the pixels re-encoded) and RGB or greyscale."""
    if image.format != "JPEG" or image.mode not in LOSSLESS_JPEG_MODES:
        return None
    if image.getexif().get(ORIENTATION_TAG, 1) != 1:
        return None
    return _jpeg_without_metadata(data, keep_icc=_is_icc_profile(image.info.get("icc_profile")))


def _is_icc_profile(profile: bytes | None) -> bool:
    """Whether `profile` is an ICC profile Little CMS can read. The segments of one that is
    not (random bytes, a payload behind an ``ICC_PROFILE`` signature) are dropped: no viewer
    can use them, and they would be stored and served as they came."""
    if not profile:
        return False
    try:
        ImageCms.ImageCmsProfile(io.BytesIO(profile))
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        return False
    return True


def _check_shape(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidImage(
            "too_many_pixels",
            f"The image is {width:,} × {height:,} px, more than the {max_pixels:,}-pixel limit.",
        )
    if min(width, height) < MIN_SIDE or max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise InvalidImage(
            "bad_dimensions",
            f"The image is {width:,} × {height:,} px; ArteFact needs at least {MIN_SIDE} px on "
            f"each side and an aspect ratio of at most {MAX_ASPECT_RATIO:.0f}:1.",
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB for the model, compositing transparency over white as a viewer would show it."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode.startswith("I;16") or image.mode == "I":
        high_bits = np.asarray(image, dtype=np.uint32) >> (8 if image.mode != "I" else 24)
        return Image.fromarray(high_bits.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")
