"""A real IIIF server for the tests: a `http.server` thread on 127.0.0.1 serving info.json
documents (Image API 2.1 and 3.0), manifests (Presentation 2.1 and 3.0) and images, and
recording every request it gets (to see which size was asked for)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from tests.analysis.conftest import painting_bytes
from tests.corpus.conftest import corpus_dir, imported_corpus, sample  # noqa: F401
from tests.library.conftest import intruder, make_analysis, sentence_ids  # noqa: F401

WIDTH, HEIGHT = 6000, 4000


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    declare_length: bool = True  # False: no Content-Length, the body ends when the line closes
    drip_seconds: float = 0.0  # > 0: the body is sent a byte at a time, this long apart


@dataclass
class IiifServer:
    host: str
    port: int
    routes: dict[str, Route | Callable[[str], Route]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def json(self, path: str, document: dict) -> str:
        self.routes[path] = Route(json.dumps(document).encode(), content_type="application/ld+json")
        return self.url(path)


def jpeg(width: int, height: int) -> bytes:
    return painting_bytes(width, height)


def info_v2(server: IiifServer, name: str, **extra) -> dict:
    return {
        "@context": "http://iiif.io/api/image/2/context.json",
        "@id": server.url(f"/iiif/2/{name}"),
        "protocol": "http://iiif.io/api/image",
        "width": WIDTH,
        "height": HEIGHT,
        "sizes": [{"width": 750, "height": 500}, {"width": 1500, "height": 1000}],
        "profile": ["http://iiif.io/api/image/2/level2.json", {"maxWidth": 1200}],
        "attribution": "Courtesy of the <b>Test</b> Museum",
        "license": "https://creativecommons.org/publicdomain/zero/1.0/",
        **extra,
    }


def info_v3(server: IiifServer, name: str, **extra) -> dict:
    return {
        "@context": "http://iiif.io/api/image/3/context.json",
        "id": server.url(f"/iiif/3/{name}"),
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level1",
        "width": WIDTH,
        "height": HEIGHT,
        "maxArea": 1_000_000,
        "sizes": [{"width": 600, "height": 400}],
        "rights": "http://rightsstatements.org/vocab/NoC-NC/1.0/",
        **extra,
    }


def serve_images(server: IiifServer, prefix: str) -> None:
    """Any image request under `prefix`: a JPEG of the size asked for (`!w,h`, `w,h`, `w,`,
    `full`, `max`), as a IIIF server would cut it."""

    def answer(path: str) -> Route:
        size = path.split("/")[-3]
        if size in ("full", "max"):
            width, height = WIDTH, HEIGHT
        else:
            wanted = size.lstrip("!").split(",")
            w = int(wanted[0]) if wanted[0] else None
            h = int(wanted[1]) if len(wanted) > 1 and wanted[1] else None
            scale = min(x for x in (w / WIDTH if w else None, h / HEIGHT if h else None) if x)
            width, height = round(WIDTH * scale), round(HEIGHT * scale)
        return Route(jpeg(width, height), content_type="image/jpeg")

    server.routes[prefix] = answer


class _Handler(BaseHTTPRequestHandler):
    server_state: IiifServer

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        state.requests.append(self.path)
        route = state.routes.get(self.path)
        if route is None:
            prefixes = [
                key for key in state.routes if key.endswith("/") and self.path.startswith(key)
            ]
            route = state.routes[max(prefixes, key=len)] if prefixes else Route(b"", status=404)
        if callable(route):
            route = route(self.path)
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        if route.declare_length:
            self.send_header("Content-Length", str(len(route.body)))
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not route.drip_seconds:
            self.wfile.write(route.body)
            return
        try:
            for byte in route.body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(route.drip_seconds)
        except OSError:  # the client gave up, as it should
            pass


@pytest.fixture
def iiif_server(settings) -> Iterator[IiifServer]:
    """The server, allow-listed by its address (127.0.0.1)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = IiifServer("127.0.0.1", httpd.server_address[1])
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    settings.IIIF_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.IIIF_ALLOW_ANY_HOST = False
    yield state
    httpd.shutdown()
    httpd.server_close()


def image_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size
