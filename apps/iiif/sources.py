"""Reading IIIF documents from other servers: Image API 2.1 / 3.0 `info.json`, image requests,
and Presentation 2.1 / 3.0 manifests (reads only: nothing here writes to the database).

Everything fetched goes through `apps.iiif.fetch`; everything read is untrusted, so each
value is taken only when it has the expected type, and text (labels, attributions) is kept as
plain text with any HTML markup removed: the portal escapes it when it shows it.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.html import strip_tags

from apps.analysis.uploads import validate_image
from apps.core.errors import ApplicationError
from apps.iiif.fetch import fetch, iiif_enabled

JSON_BYTES = 5_000_000
"""The most a manifest or info.json may weigh: a manifest of a thousand canvases is ~2 MB."""

THUMBNAIL_SIDE = 240
"""The long side of a canvas's picture in the workspace's list of a manifest's canvases."""

THUMBNAIL_BYTES = 3_000_000
"""The most a canvas's thumbnail may weigh when it is fetched for that list."""

IMAGE_REQUEST = re.compile(
    r"^(?P<base>https?://.+?)/(?P<region>full|square|pct:[\d.,]+|\d+,\d+,\d+,\d+)"
    r"/(?P<size>[^/]+)/(?P<rotation>!?[\d.]+)/(?P<quality>[a-z]+)\.(?P<format>[a-z0-9]+)$",
    re.IGNORECASE,
)
MAX_TEXT = 2000


@dataclass(frozen=True)
class ImageService:
    """What an info.json says about an image: its size and what sizes may be asked for."""

    id: str
    version: int
    width: int
    height: int
    level0: bool = False
    max_width: int | None = None
    max_height: int | None = None
    max_area: int | None = None
    sizes: tuple[tuple[int, int], ...] = ()
    attribution: str = ""
    rights: str = ""

    def request_url(self) -> str:
        """The image at the size an analysis needs: the largest that fits ANALYSIS_MAX_PIXELS,
        IIIF_MAX_SIDE on its long side and the service's maxWidth / maxHeight / maxArea,
        never larger than the image (no upscaling). A level-0 service that lists `sizes`
        is asked for the largest listed size that fits, as it may serve no other."""
        width, height = self.width, self.height
        area = width * height
        scale = min(
            1.0,
            settings.IIIF_MAX_SIDE / max(width, height),
            math.sqrt(settings.ANALYSIS_MAX_PIXELS / area),
        )
        if self.max_width:
            scale = min(scale, self.max_width / width)
        if self.max_height:
            scale = min(scale, self.max_height / height)
        if self.max_area:
            scale = min(scale, math.sqrt(self.max_area / area))
        if self.level0 and self.sizes:
            size = self._listed_size(width * scale, height * scale)
        elif scale >= 1.0:
            size = "max" if self.version == 3 else "full"
        else:
            size = f"!{max(1, math.floor(width * scale))},{max(1, math.floor(height * scale))}"
        return f"{self.id}/full/{size}/0/default.jpg"

    def _listed_size(self, width: float, height: float) -> str:
        fitting = [(w, h) for w, h in self.sizes if w <= width + 0.5 and h <= height + 0.5]
        w, h = max(fitting) if fitting else min(self.sizes)
        return f"{w},{h}" if self.version == 3 else f"{w},"


@dataclass(frozen=True)
class Canvas:
    """One canvas of a manifest: what the workspace lists and what its image is."""

    id: str
    label: str
    width: int | None
    height: int | None
    thumbnail: str
    service_id: str
    service_version: int
    image_url: str
    attribution: str = ""
    rights: str = ""


@dataclass(frozen=True)
class Manifest:
    url: str
    label: str
    canvases: list[Canvas]
    attribution: str = ""
    attribution_label: str = "Attribution"
    rights: str = ""


@dataclass(frozen=True)
class Source:
    """What an analysis from IIIF keeps: where its image came from and under what terms, and
    the URL its image is fetched from."""

    image_url: str
    manifest_url: str = ""
    canvas_id: str = ""
    service_id: str = ""
    label: str = ""
    canvas_label: str = ""
    attribution: str = ""
    attribution_label: str = "Attribution"
    rights: str = ""

    @property
    def filename(self) -> str:
        """A name for the analysis: the labels, or the last part of the image's URL."""
        names = [name for name in (self.label, self.canvas_label) if name]
        if names:
            return " — ".join(dict.fromkeys(names))[:255]
        return (urlsplit(self.service_id or self.image_url).path.rstrip("/").rsplit("/", 1)[-1])[
            :255
        ]


def _invalid(sentence: str) -> ApplicationError:
    return ApplicationError("iiif_not_iiif", sentence)


def _text(value: object) -> str:
    """Plain text from a IIIF value: a v3 language map, a v2 string, list or `@value`."""
    parts: list[str] = []

    def walk(item: object) -> None:
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, list):
            for element in item:
                walk(element)
        elif isinstance(item, dict):
            if "@value" in item:
                walk(item["@value"])
            else:
                preferred = item.get("en") or item.get("none")
                for element in [preferred] if preferred else item.values():
                    walk(element)

    walk(value)
    text = " ".join(strip_tags(part).strip() for part in parts if isinstance(part, str))
    return re.sub(r"\s+", " ", text).strip()[:MAX_TEXT]


def _url(value: object) -> str:
    """An http(s) URL from a string, an object with `id` / `@id`, or the first of a list."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("id") or value.get("@id") or ""
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        return value[:2000]
    return ""


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def read_json(url: str) -> dict:
    """A JSON object fetched from `url` (manifests and info.json alike)."""
    if not iiif_enabled():
        raise ApplicationError(
            "iiif_disabled", "This site does not fetch images from IIIF servers."
        )
    fetched = fetch(url, max_bytes=JSON_BYTES, accept="application/ld+json, application/json")
    try:
        document = json.loads(fetched.content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid(
            "The URL does not lead to a IIIF manifest or info.json (not JSON)."
        ) from None
    if not isinstance(document, dict):
        raise _invalid("The URL does not lead to a IIIF manifest or info.json.")
    return document


def _context(document: dict) -> str:
    context = document.get("@context", "")
    return " ".join(context) if isinstance(context, list) else str(context)


def _is_image_service(document: dict) -> bool:
    return "iiif.io/api/image" in _context(document) or document.get("protocol") == (
        "http://iiif.io/api/image"
    )


def _is_manifest(document: dict) -> bool:
    return document.get("type") == "Manifest" or document.get("@type") == "sc:Manifest"


def image_service(document: dict) -> ImageService:
    """An ImageService from an info.json document."""
    version = 3 if "image/3" in _context(document) or document.get("type") == "ImageService3" else 2
    service_id = _url(document.get("id") if version == 3 else document.get("@id"))
    service_id = service_id or _url(document.get("@id") or document.get("id"))
    width, height = _positive(document.get("width")), _positive(document.get("height"))
    if not service_id or width is None or height is None:
        raise _invalid("The info.json gives no id, width or height.")
    profile = document.get("profile")
    profiles = profile if isinstance(profile, list) else [profile]
    level0 = any(
        isinstance(item, str) and item.endswith(("level0", "level0.json")) for item in profiles
    )
    limits: dict[str, int | None] = {"maxWidth": None, "maxHeight": None, "maxArea": None}
    for source in [document, *(item for item in profiles if isinstance(item, dict))]:
        for name in limits:
            limits[name] = limits[name] or _positive(source.get(name))
    max_width, max_height = limits["maxWidth"], limits["maxHeight"]
    if max_width and not max_height:
        max_height = max_width  # Image API: maxHeight defaults to maxWidth
    sizes = tuple(
        (entry["width"], entry["height"])
        for entry in document.get("sizes") or []
        if isinstance(entry, dict)
        and _positive(entry.get("width"))
        and _positive(entry.get("height"))
    )
    return ImageService(
        id=service_id.removesuffix("/info.json").rstrip("/"),
        version=version,
        width=width,
        height=height,
        level0=level0,
        max_width=max_width,
        max_height=max_height,
        max_area=limits["maxArea"],
        sizes=sizes,
        attribution=_text(document.get("attribution")),
        rights=_url(document.get("rights") or document.get("license")),
    )


def _service_of(resource: dict) -> tuple[str, int]:
    """The image service of an image resource (v2 `service` object, v3 list), and its
    version."""
    services = resource.get("service")
    for service in services if isinstance(services, list) else [services]:
        if not isinstance(service, dict):
            continue
        kind = str(service.get("type") or service.get("@type") or "")
        context, profile = str(service.get("@context", "")), str(service.get("profile", ""))
        url = _url(service)
        if not url:
            continue
        if "ImageService3" in kind or "image/3" in context:
            return url.removesuffix("/info.json").rstrip("/"), 3
        if "ImageService" in kind or "image/2" in context or "iiif.io/api/image/2" in profile:
            return url.removesuffix("/info.json").rstrip("/"), 2
    return "", 0


def _canvas(canvas: dict, canvas_id: str, image: dict, *, attribution: str, rights: str) -> Canvas:
    """A Canvas from what both versions share; `image` is the painted image resource."""
    service_id, version = _service_of(image)
    return Canvas(
        id=canvas_id,
        label=_text(canvas.get("label")),
        width=_positive(canvas.get("width")),
        height=_positive(canvas.get("height")),
        thumbnail=_url(canvas.get("thumbnail")),
        service_id=service_id,
        service_version=version,
        image_url=_url(image),
        attribution=attribution,
        rights=rights,
    )


def _canvas_v2(canvas: dict) -> Canvas | None:
    canvas_id = _url(canvas.get("@id"))
    images = canvas.get("images") or []
    resource = images[0].get("resource") if images and isinstance(images[0], dict) else None
    if not canvas_id or not isinstance(resource, dict):
        return None
    return _canvas(
        canvas,
        canvas_id,
        resource,
        attribution=_text(canvas.get("attribution")),
        rights=_url(canvas.get("license")),
    )


def _painted(canvas: dict) -> dict | None:
    """The image a v3 canvas paints: the body of its first painting annotation (the first
    item of a list or a Choice)."""
    body = None
    for page in canvas.get("items") or []:
        for annotation in (page.get("items") or []) if isinstance(page, dict) else []:
            if isinstance(annotation, dict) and annotation.get("motivation") == "painting":
                body = annotation.get("body")
                break
        if body is not None:
            break
    if isinstance(body, list):
        body = body[0] if body else None
    if isinstance(body, dict) and body.get("type") == "Choice":
        choices = body.get("items") or []
        body = choices[0] if choices else None
    return body if isinstance(body, dict) else None


def _canvas_v3(canvas: dict) -> Canvas | None:
    canvas_id = _url(canvas.get("id"))
    body = _painted(canvas)
    if not canvas_id or body is None:
        return None
    statement = canvas.get("requiredStatement")
    return _canvas(
        canvas,
        canvas_id,
        body,
        attribution=_text(statement.get("value")) if isinstance(statement, dict) else "",
        rights=_url(canvas.get("rights")),
    )


def manifest(document: dict, url: str) -> Manifest:
    """The canvases and terms of a Presentation 2.1 or 3.0 manifest."""
    if document.get("type") == "Manifest":
        canvases = [
            _canvas_v3(item) for item in document.get("items") or [] if isinstance(item, dict)
        ]
        statement = document.get("requiredStatement")
        statement = statement if isinstance(statement, dict) else {}
        attribution = _text(statement.get("value"))
        attribution_label = _text(statement.get("label")) or "Attribution"
        rights = _url(document.get("rights"))
    else:
        sequences = document.get("sequences") or [{}]
        first = sequences[0] if isinstance(sequences[0], dict) else {}
        canvases = [
            _canvas_v2(item) for item in first.get("canvases") or [] if isinstance(item, dict)
        ]
        attribution, attribution_label = _text(document.get("attribution")), "Attribution"
        rights = _url(document.get("license"))
    return Manifest(
        url=url,
        label=_text(document.get("label")),
        canvases=[canvas for canvas in canvases if canvas is not None],
        attribution=attribution,
        attribution_label=attribution_label,
        rights=rights,
    )


def read_manifest(url: str) -> Manifest:
    """The manifest at `url`, or a refusal when `url` holds something else."""
    document = read_json(url)
    if not _is_manifest(document):
        raise _invalid("The URL does not lead to a IIIF Presentation manifest.")
    return manifest(document, url)


def service_url(url: str) -> str | None:
    """The info.json of an image request URL (`…/full/max/0/default.jpg`), else None."""
    match = IMAGE_REQUEST.match(url)
    return f"{match['base']}/info.json" if match else None


def read_source(url: str, canvas_id: str = "") -> Source:
    """Where the image of `url` (an info.json, an image request, or a manifest with
    `canvas_id`, which may be left out when it has one canvas) is fetched from, and its terms.

    An image request is read as its service: the image is fetched whole at the size the
    analysis needs, whatever region and size the request named.
    """
    document = read_json(service_url(url) or url)
    if _is_image_service(document) and not _is_manifest(document):
        service = image_service(document)
        return Source(
            image_url=service.request_url(),
            service_id=service.id,
            attribution=service.attribution,
            rights=service.rights,
        )
    if not _is_manifest(document):
        raise _invalid("The URL does not lead to a IIIF manifest, info.json or image request.")
    found = manifest(document, url)
    if not canvas_id and len(found.canvases) == 1:
        canvas_id = found.canvases[0].id
    if not canvas_id:
        raise ApplicationError(
            "iiif_canvas_required",
            f"The manifest has {len(found.canvases)} canvases; choose one.",
        )
    canvas = next((item for item in found.canvases if item.id == canvas_id), None)
    if canvas is None:
        raise ApplicationError(
            "iiif_unknown_canvas", "The manifest has no canvas with that id (or no image on it)."
        )
    service = None
    if canvas.service_id:
        service = image_service(read_json(f"{canvas.service_id}/info.json"))
    image_url = service.request_url() if service else canvas.image_url
    if not image_url:
        raise ApplicationError("iiif_unknown_canvas", "That canvas names no image to fetch.")
    return Source(
        image_url=image_url,
        manifest_url=url,
        canvas_id=canvas.id,
        service_id=service.id if service else "",
        label=found.label,
        canvas_label=canvas.label,
        attribution=canvas.attribution
        or found.attribution
        or (service.attribution if service else ""),
        attribution_label=found.attribution_label,
        rights=canvas.rights or found.rights or (service.rights if service else ""),
    )


def fetch_image(source: Source) -> bytes:
    """The image bytes of `source`, at most ANALYSIS_MAX_UPLOAD_BYTES (the same limit as an
    upload; `create_analysis` then checks them as it checks an upload)."""
    return fetch(source.image_url, accept="image/jpeg, image/*").content


def thumbnail_url(canvas: Canvas) -> str:
    """The picture of `canvas` for the list of a manifest's canvases: its own thumbnail, else
    a small request to its image service, else none (the painted image itself may be tens of
    megabytes, too much for a list)."""
    if canvas.thumbnail:
        return canvas.thumbnail
    if canvas.service_id:
        return f"{canvas.service_id}/full/!{THUMBNAIL_SIDE},{THUMBNAIL_SIDE}/0/default.jpg"
    return ""


def fetch_thumbnail(url: str) -> bytes:
    """A canvas's thumbnail fetched by the server, checked as an upload is and re-encoded as
    a small JPEG. The portal shows it from its own origin: the page's CSP names no other,
    and the researcher's browser never contacts the IIIF server."""
    data = fetch(url, max_bytes=THUMBNAIL_BYTES, accept="image/jpeg, image/*").content
    side = (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    clean = validate_image(
        data, max_bytes=THUMBNAIL_BYTES, max_pixels=settings.ANALYSIS_MAX_PIXELS, preview_size=side
    )
    picture = clean.image.copy()
    picture.thumbnail(side)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
