"""Malicious and awkward upload files, built in memory, and what ArteFact answers to each.

Every file is made by a small deterministic function (Pillow, numpy and byte-level assembly,
no binary file in the repository) and listed in `HOSTILE_FILES` with the name it is uploaded
under and the expected outcome: a refusal (HTTP status and the `error` code of the envelope
`{"error": code, "detail": sentence}`) or 202, where the file is in fact a legitimate image
that must be analysed like any other.

`tests/hostile/test_malicious_files.py` uploads each of them; for trials against a running
server, write them all to a folder::

    python -m tests.hostile.files OUTDIR
"""

from __future__ import annotations

import functools
import io
import json
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image

ACCEPTED = 202
"""The status of an upload that is analysed: its analysis is queued."""

PAYLOAD_MARKER = b"ARTEFACT-HOSTILE-PAYLOAD"
"""In every payload smuggled into or after an image: no stored file may contain it."""


@dataclass(frozen=True)
class HostileFile:
    """One file of the collection, with the outcome the upload must have."""

    name: str
    make: Callable[[], bytes]
    filename: str
    status: int
    error: str | None
    why: str

    @property
    def data(self) -> bytes:
        return self.make()

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED


# Building blocks ---------------------------------------------------------------------------


def _pixels(width: int = 96, height: int = 64, seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8))


def _encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _zip_archive() -> bytes:
    """A ZIP holding an HTML page with a script: what a polyglot hides after its image."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("payload.html", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, b"<script>alert(document.domain)</script>" + PAYLOAD_MARKER)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png(width: int, height: int, *, bit_depth: int, colour: int, rows: bytes | None) -> bytes:
    """A PNG written chunk by chunk: `rows` are the filtered scanlines (None: all zero, which
    compresses about a thousandfold: the raw material of a decompression bomb)."""
    if rows is None:
        row_bytes = 1 + (width * bit_depth * {0: 1, 2: 3}[colour] + 7) // 8
        compressor = zlib.compressobj(9)
        row = bytes(row_bytes)
        compressed = b"".join(compressor.compress(row) for _ in range(height))
        compressed += compressor.flush()
    else:
        compressed = zlib.compress(rows, 9)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", compressed)
        + _png_chunk(b"IEND", b"")
    )


def _tiff(entries: dict[int, tuple[int, list[int]]], pixel_data: bytes) -> bytes:
    """A little-endian classic TIFF with one IFD of `entries` (tag: (type, values)), written
    by hand so that its tags can lie: the pixel data follows the header, then the IFD."""
    data_offset = 8
    ifd_offset = data_offset + len(pixel_data)
    ifd_offset += ifd_offset % 2
    count = len(entries)
    extra_offset = ifd_offset + 2 + count * 12 + 4
    ifd, extra = [struct.pack("<H", count)], b""
    sizes = {3: 2, 4: 4}
    for tag in sorted(entries):
        kind, values = entries[tag]
        packed = b"".join(struct.pack("<H" if kind == 3 else "<I", v) for v in values)
        if len(packed) <= 4:
            value = packed.ljust(4, b"\x00")
        else:
            value = struct.pack("<I", extra_offset + len(extra))
            extra += packed
        assert len(packed) == sizes[kind] * len(values)
        ifd.append(struct.pack("<HHI", tag, kind, len(values)) + value)
    ifd.append(struct.pack("<I", 0))
    head = b"II*\x00" + struct.pack("<I", ifd_offset)
    body = pixel_data.ljust(ifd_offset - data_offset, b"\x00")
    return head + body + b"".join(ifd) + extra


def _tiled_tiff(tile_width: int, tile_length: int, tiles: int, *, compression: int = 1) -> bytes:
    """A 64 × 64 greyscale TIFF whose tile tags say `tile_width` × `tile_length` and give
    `tiles` tiles of 64 × 64 bytes each (whatever the tile size claims)."""
    tile_bytes = 64 * 64
    pixel_data = bytes(range(256)) * (tile_bytes * tiles // 256)
    offsets = [8 + index * tile_bytes for index in range(tiles)]
    return _tiff(
        {
            256: (3, [64]),  # width
            257: (3, [64]),  # length
            258: (3, [8]),  # bits per sample
            259: (3, [compression]),
            262: (3, [1]),  # black is zero
            277: (3, [1]),  # samples per pixel
            284: (3, [1]),  # chunky
            322: (4, [tile_width]),
            323: (4, [tile_length]),
            324: (4, offsets),
            325: (4, [tile_bytes] * tiles),
        },
        pixel_data,
    )


def _iso_media(brand: bytes) -> bytes:
    """The start of an ISO base media file (HEIC, AVIF): an `ftyp` box naming `brand`, then a
    `meta` box with a handler, as a phone's photo begins."""
    ftyp = brand + b"\x00\x00\x00\x00" + b"mif1" + brand + b"miaf"
    handler = b"\x00" * 8 + b"pict" + b"\x00" * 12 + b"\x00"
    hdlr = struct.pack(">I", 8 + 4 + len(handler)) + b"hdlr" + b"\x00" * 4 + handler
    meta = struct.pack(">I", 8 + 4 + len(hdlr)) + b"meta" + b"\x00" * 4 + hdlr
    mdat = struct.pack(">I", 8 + 2048) + b"mdat" + bytes(range(256)) * 8
    return struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp + meta + mdat


def _jpeg_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(_pixels(), "JPEG", exif=exif.tobytes(), quality=90)


def _gif_frames(canvas: int, frames: int) -> bytes:
    """A `canvas`-pixel square GIF (one full first frame from Pillow), then `frames` − 1
    further frames of one pixel each, spliced in by hand before the trailer."""
    first = _encode(Image.new("P", (canvas, canvas), 0), "GIF")
    assert first.endswith(b";")
    # One pixel, LZW minimum code size 2: clear (4), index 1, end (5), in 3-bit codes.
    one_pixel = b"\x02\x02\x4c\x01\x00"
    control = b"\x21\xf9\x04\x04\x01\x00\x00\x00"  # keep the frame, 10 ms
    extra = b"".join(
        control
        + b"\x2c"
        + struct.pack("<HHHH", index % canvas, (index // canvas) % canvas, 1, 1)
        + b"\x00"
        + one_pixel
        for index in range(1, frames)
    )
    return first[:-1] + extra + b";"


# The files ----------------------------------------------------------------------------------


@functools.cache
def zero_bytes() -> bytes:
    return b""


@functools.cache
def svg_with_script() -> bytes:
    return (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" '
        b'onload="alert(document.domain)"><rect width="64" height="64"/></svg>'
    )


@functools.cache
def svg_after_bom_and_comment() -> bytes:
    """Markup that does not start with a tag the upload check names: a comment first."""
    return b"\xef\xbb\xbf  <!-- a painting --><svg onload='alert(1)'></svg>"


@functools.cache
def html_page() -> bytes:
    return b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


@functools.cache
def xml_external_entity() -> bytes:
    return (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<svg>&xxe;</svg>"
    )


@functools.cache
def jpeg_zip_polyglot() -> bytes:
    return _encode(_pixels(), "JPEG") + _zip_archive()


@functools.cache
def png_zip_polyglot() -> bytes:
    return _encode(_pixels(), "PNG") + _zip_archive()


@functools.cache
def gif_html_polyglot() -> bytes:
    return _encode(_pixels().convert("P"), "GIF") + b"<html><script>alert(1)</script></html>"


@functools.cache
def gif_script_ending_in_semicolon() -> bytes:
    """A GIF and a script after its trailer that itself ends in ';', the trailer byte."""
    return (
        _encode(_pixels().convert("P"), "GIF") + b"alert(document.domain);" + PAYLOAD_MARKER + b";"
    )


@functools.cache
def tiff_zip_polyglot() -> bytes:
    return _encode(_pixels(), "TIFF") + _zip_archive()


@functools.cache
def webp_with_trailing_zip() -> bytes:
    return _encode(_pixels(), "WEBP", quality=80) + _zip_archive()


@functools.cache
def webp_riff_covering_a_payload() -> bytes:
    """A WebP whose RIFF size is stretched over an unknown chunk that holds a payload: not
    trailing data, so it is read as part of the image."""
    data = _encode(_pixels(), "WEBP", quality=80)
    chunk_body = PAYLOAD_MARKER + b"<script>alert(1)</script>"
    chunk = b"XPLD" + struct.pack("<I", len(chunk_body)) + chunk_body
    if len(chunk_body) % 2:
        chunk += b"\x00"
    body = data[8:] + chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


@functools.cache
def png_bomb_64_megapixels() -> bytes:
    """8000 × 8000 px in about 8 kB: over ANALYSIS_MAX_PIXELS (50 M) but under Pillow's own
    guard (89 M)."""
    return _png(8000, 8000, bit_depth=1, colour=0, rows=None)


@functools.cache
def png_bomb_144_megapixels() -> bytes:
    """12000 × 12000 px: past Pillow's warning threshold, which the check turns into an
    error."""
    return _png(12000, 12000, bit_depth=1, colour=0, rows=None)


@functools.cache
def png_claiming_ten_gigapixels() -> bytes:
    """A header claiming 100000 × 100000 px over a few bytes of data: past twice Pillow's
    limit, refused when the file is opened."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(1000)))
        + _png_chunk(b"IEND", b"")
    )


@functools.cache
def png_just_under_the_pixel_limit() -> bytes:
    """7071 × 7071 = 49,999,041 px (the limit is 50,000,000) in about 7 kB: accepted, and
    decoded in full; what bounds its cost is the per-researcher quota, not the pixel check."""
    return _png(7071, 7071, bit_depth=1, colour=0, rows=None)


@functools.cache
def png_strip_100000_by_1() -> bytes:
    return _png(100_000, 1, bit_depth=8, colour=2, rows=None)


@functools.cache
def tiff_tiles_of_65536_px() -> bytes:
    """A 64 × 64 TIFF whose tiles claim to be 65536 × 65536 px (16 GB each, were they
    allocated), over 4 kB of data."""
    return _tiled_tiff(65536, 65536, 1)


@functools.cache
def tiff_tiles_of_65536_px_deflate() -> bytes:
    """The same lie with Deflate compression, which Pillow hands to libtiff."""
    return _tiled_tiff(65536, 65536, 1, compression=8)


@functools.cache
def tiff_tiles_of_zero_px() -> bytes:
    return _tiled_tiff(0, 0, 1)


@functools.cache
def tiff_tile_size_not_matching_the_image() -> bytes:
    """Tiles of 17 × 17 px (the specification wants multiples of 16), 16 of them needed to
    cover 64 × 64 px, and only 2 tile offsets given."""
    return _tiled_tiff(17, 17, 2)


@functools.cache
def tiff_strips_missing() -> bytes:
    """A 64 × 64 TIFF in strips of 8 rows that gives one strip offset instead of 8."""
    return _tiff(
        {
            256: (3, [64]),
            257: (3, [64]),
            258: (3, [8]),
            259: (3, [1]),
            262: (3, [1]),
            273: (4, [8]),  # strip offsets
            277: (3, [1]),
            278: (3, [8]),  # rows per strip
            279: (4, [64 * 8]),  # strip byte counts
        },
        bytes(range(256)) * 2,
    )


@functools.cache
def heic_photo() -> bytes:
    return _iso_media(b"heic")


@functools.cache
def avif_image() -> bytes:
    """A real AVIF (Pillow can write and read it), just not one of the accepted formats."""
    try:
        return _encode(_pixels(), "AVIF", quality=60)
    except (KeyError, OSError):  # a Pillow built without AVIF: the header is what is sniffed
        return _iso_media(b"avif")


@functools.cache
def cmyk_progressive_jpeg() -> bytes:
    return _encode(_pixels().convert("CMYK"), "JPEG", progressive=True, quality=90)


@functools.cache
def jpeg_orientation_0() -> bytes:
    return _jpeg_with_orientation(0)


@functools.cache
def jpeg_orientation_9() -> bytes:
    return _jpeg_with_orientation(9)


@functools.cache
def jpeg_orientation_255() -> bytes:
    return _jpeg_with_orientation(255)


@functools.cache
def jpeg_icc_profile_of_600_kb_garbage() -> bytes:
    """An 'ICC profile' of 600 kB of random bytes, split over ten APP2 segments: no profile a
    colour engine can parse, and room for any payload."""
    garbage = np.random.default_rng(3).integers(0, 255, 600_000, dtype=np.uint8).tobytes()
    return _encode(_pixels(), "JPEG", icc_profile=PAYLOAD_MARKER + garbage)


@functools.cache
def png_icc_profile_zlib_bomb() -> bytes:
    """An iCCP chunk whose 100 kB of Deflate data inflate to 100 MB."""
    bomb = zlib.compress(bytes(100_000_000), 9)
    png = _encode(_pixels(), "PNG")
    iccp = _png_chunk(b"iCCP", b"sRGB\x00\x00" + bomb)
    return png[:33] + iccp + png[33:]  # after the signature and IHDR


@functools.cache
def png_truncated_in_its_data() -> bytes:
    data = _encode(_pixels(), "PNG")
    return data[: len(data) // 2]


@functools.cache
def png_chunk_length_past_the_end() -> bytes:
    """An IDAT chunk whose length field says 2 GB."""
    data = bytearray(_encode(_pixels(), "PNG"))
    idat = data.index(b"IDAT") - 4
    data[idat : idat + 4] = struct.pack(">I", 0x7FFFFFFF)
    return bytes(data)


@functools.cache
def jpeg_truncated() -> bytes:
    data = _encode(_pixels(), "JPEG")
    return data[: len(data) // 2]


@functools.cache
def gif_with_10000_frames() -> bytes:
    return _gif_frames(64, 10_000)


@functools.cache
def animated_webp() -> bytes:
    frames = [_pixels(seed=seed) for seed in range(3)]
    return _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)


@functools.cache
def plain_png() -> bytes:
    return _encode(_pixels(), "PNG")


@functools.cache
def plain_jpeg() -> bytes:
    return _encode(_pixels(), "JPEG", quality=90)


@functools.cache
def ppm_image() -> bytes:
    return _encode(_pixels(), "PPM")


@functools.cache
def bmp_image() -> bytes:
    return _encode(_pixels(), "BMP")


@functools.cache
def ico_image() -> bytes:
    return _encode(_pixels(64, 64), "ICO", sizes=[(64, 64)])


@functools.cache
def zip_archive() -> bytes:
    return _zip_archive()


@functools.cache
def png_16_bit_greyscale() -> bytes:
    ramp = np.linspace(0, 65535, 96 * 64, dtype=np.uint16).reshape(64, 96)
    return _encode(Image.fromarray(ramp), "PNG")


@functools.cache
def palette_png_with_transparency() -> bytes:
    image = _pixels().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _encode(image, "PNG", transparency=0)


def _refused(status: int, error: str) -> dict:
    return {"status": status, "error": error}


_ACCEPTED = {"status": ACCEPTED, "error": None}


def _entries() -> list[tuple]:
    """(name or None for the maker's own name, maker, upload name, outcome, why)."""
    return [
        (None, zero_bytes, "empty.jpg", _refused(400, "empty_file"), "nothing to read"),
        (None, svg_with_script, "painting.svg", _refused(400, "unsupported_format"), "markup"),
        (
            None,
            svg_after_bom_and_comment,
            "painting.png",
            _refused(400, "not_an_image"),
            "markup that does not start with a known tag: Pillow finds no image in it",
        ),
        (None, html_page, "painting.html", _refused(400, "unsupported_format"), "markup"),
        (None, xml_external_entity, "painting.xml", _refused(400, "unsupported_format"), "markup"),
        (None, jpeg_zip_polyglot, "painting.jpg", _refused(400, "polyglot"), "bytes after EOI"),
        (None, png_zip_polyglot, "painting.png", _refused(400, "polyglot"), "bytes after IEND"),
        (
            None,
            gif_html_polyglot,
            "painting.gif",
            _refused(400, "polyglot"),
            "bytes after the trailer",
        ),
        (
            None,
            gif_script_ending_in_semicolon,
            "painting.gif",
            _refused(400, "polyglot"),
            "bytes after the trailer, themselves ending in the trailer byte",
        ),
        (
            None,
            tiff_zip_polyglot,
            "painting.tif",
            _refused(400, "polyglot"),
            "bytes after the IFDs",
        ),
        (
            None,
            webp_with_trailing_zip,
            "painting.webp",
            _refused(400, "polyglot"),
            "after the RIFF",
        ),
        (
            None,
            webp_riff_covering_a_payload,
            "painting.webp",
            _ACCEPTED,
            "an unknown chunk inside the RIFF is skipped by decoders; the stored copy is "
            "re-encoded as PNG from the pixels alone, so the payload is not stored",
        ),
        (
            None,
            png_bomb_64_megapixels,
            "bomb.png",
            _refused(400, "too_many_pixels"),
            "header check",
        ),
        (
            None,
            png_bomb_144_megapixels,
            "bomb.png",
            _refused(400, "too_many_pixels"),
            "header check",
        ),
        (
            None,
            png_claiming_ten_gigapixels,
            "bomb.png",
            _refused(400, "too_many_pixels"),
            "Pillow's own guard, at open",
        ),
        (
            None,
            png_just_under_the_pixel_limit,
            "large.png",
            _ACCEPTED,
            "under the limit: decoded in full, bounded by the per-researcher quotas",
        ),
        (None, png_strip_100000_by_1, "strip.png", _refused(400, "bad_dimensions"), "aspect ratio"),
        (
            None,
            tiff_tiles_of_65536_px,
            "tiles.tif",
            _refused(400, "corrupt_image"),
            "the tiles' data is shorter than the tile size claims",
        ),
        (
            None,
            tiff_tiles_of_65536_px_deflate,
            "tiles.tif",
            _refused(400, "corrupt_image"),
            "libtiff refuses the tile size",
        ),
        (None, tiff_tiles_of_zero_px, "tiles.tif", _refused(400, "corrupt_image"), "no tile size"),
        (
            None,
            tiff_tile_size_not_matching_the_image,
            "tiles.tif",
            _refused(400, "corrupt_image"),
            "too few tiles for the image",
        ),
        (
            None,
            tiff_strips_missing,
            "strips.tif",
            _refused(400, "corrupt_image"),
            "too few strips for the image",
        ),
        (None, heic_photo, "IMG_0001.HEIC", _refused(400, "not_an_image"), "format not accepted"),
        (None, avif_image, "painting.avif", _refused(400, "not_an_image"), "format not accepted"),
        (None, cmyk_progressive_jpeg, "cmyk.jpg", _ACCEPTED, "a print scan: converted to RGB"),
        (None, jpeg_orientation_0, "o0.jpg", _ACCEPTED, "an invalid orientation is ignored"),
        (None, jpeg_orientation_9, "o9.jpg", _ACCEPTED, "an invalid orientation is ignored"),
        (None, jpeg_orientation_255, "o255.jpg", _ACCEPTED, "an invalid orientation is ignored"),
        (
            None,
            jpeg_icc_profile_of_600_kb_garbage,
            "icc.jpg",
            _ACCEPTED,
            "the pixels are fine; a profile no colour engine can parse is not stored",
        ),
        (
            None,
            png_icc_profile_zlib_bomb,
            "icc.png",
            _refused(400, "corrupt_image"),
            "Pillow stops inflating the profile at 1 MB",
        ),
        (None, png_truncated_in_its_data, "cut.png", _refused(400, "corrupt_image"), "no IEND"),
        (
            None,
            png_chunk_length_past_the_end,
            "cut.png",
            _refused(400, "corrupt_image"),
            "2 GB chunk",
        ),
        (None, jpeg_truncated, "cut.jpg", _refused(400, "corrupt_image"), "no EOI"),
        (None, gif_with_10000_frames, "frames.gif", _ACCEPTED, "the first frame is analysed"),
        (None, animated_webp, "frames.webp", _ACCEPTED, "the first frame is analysed"),
        (
            "png_named_jpg",
            plain_png,
            "painting.jpg",
            _ACCEPTED,
            "a PNG named .jpg: the bytes decide",
        ),
        (
            "jpeg_named_exe",
            plain_jpeg,
            "painting.exe",
            _ACCEPTED,
            "a JPEG named .exe: stored as .jpg",
        ),
        (
            "jpeg_named_svg",
            plain_jpeg,
            "painting.svg",
            _ACCEPTED,
            "a JPEG named .svg: stored as .jpg",
        ),
        (
            "name_with_path_traversal",
            plain_jpeg,
            "../../etc/passwd.png",
            _ACCEPTED,
            "path traversal: only the last part",
        ),
        (
            "name_with_nul",
            plain_jpeg,
            "painting\x00.exe.jpg",
            _ACCEPTED,
            "a NUL in the name: dropped",
        ),
        (
            "name_of_300_characters",
            plain_jpeg,
            "p" * 296 + ".jpg",
            _ACCEPTED,
            "a 300-character name: kept to 255",
        ),
        (
            "name_dot_dot",
            plain_jpeg,
            "..",
            _refused(400, "invalid"),
            "a name Django's parser discards",
        ),
        (None, ppm_image, "painting.ppm", _refused(400, "not_an_image"), "format not accepted"),
        (None, bmp_image, "painting.bmp", _refused(400, "not_an_image"), "format not accepted"),
        (None, ico_image, "favicon.ico", _refused(400, "not_an_image"), "format not accepted"),
        (None, zip_archive, "painting.jpg", _refused(400, "not_an_image"), "no image at all"),
        (None, png_16_bit_greyscale, "grey16.png", _ACCEPTED, "a scan: reduced to 8 bits"),
        (None, palette_png_with_transparency, "palette.png", _ACCEPTED, "composited over white"),
    ]


HOSTILE_FILES: tuple[HostileFile, ...] = tuple(
    HostileFile(name=name or make.__name__, make=make, filename=filename, why=why, **outcome)
    for name, make, filename, outcome, why in _entries()
)
"""Every file, by a unique name."""


def _safe_stem(filename: str) -> str:
    """A name for the file system: letters, digits and underscores."""
    kept = "".join(char if char.isalnum() else "_" for char in filename.lower())
    return kept.strip("_")[:24]


BY_NAME = {item.name: item for item in HOSTILE_FILES}
assert len(BY_NAME) == len(HOSTILE_FILES), "two files share a name"


def write_all(folder: Path, *, out: TextIO | None = None) -> list[Path]:
    """Write every file to `folder` (numbered, with a safe name and the upload name's
    extension) and a `manifest.json` of names, upload names and expected outcomes."""
    out = out or sys.stdout
    folder.mkdir(parents=True, exist_ok=True)
    written, manifest = [], []
    for number, item in enumerate(HOSTILE_FILES, start=1):
        extension = _safe_stem(Path(item.filename).suffix) or "bin"
        path = folder / f"{number:02d}-{item.name}.{extension}"
        data = item.data
        path.write_bytes(data)
        written.append(path)
        manifest.append(
            {
                "file": path.name,
                "name": item.name,
                "upload_filename": item.filename,
                "status": item.status,
                "error": item.error,
                "why": item.why,
            }
        )
        print(
            f"[{number:2d}/{len(HOSTILE_FILES)}] {path.name}: {len(data):,} bytes, expect "
            f"{item.status} {item.error or 'accepted'}",
            file=out,
        )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.hostile.files OUTDIR", file=sys.stderr)
        return 2
    write_all(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
