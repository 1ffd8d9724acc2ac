"""IIIF in: an analysis from an info.json, an image request or a manifest's canvas, fetched
from a real local IIIF server at the size the analysis needs, with its source and terms kept;
and every refusal of the safe fetch, each a 400 with an `iiif_*` code and a sentence."""

from __future__ import annotations

import time

import pytest

from apps.analysis.models import Analysis, IiifSource
from tests.iiif.conftest import (
    HEIGHT,
    WIDTH,
    Route,
    info_v2,
    info_v3,
    jpeg,
    serve_images,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(media, redis_connection, iiif_server):
    """The IIIF server with a v2 and a v3 image service."""
    iiif_server.json("/iiif/2/a/info.json", info_v2(iiif_server, "a"))
    iiif_server.json("/iiif/3/b/info.json", info_v3(iiif_server, "b"))
    serve_images(iiif_server, "/iiif/2/a/")
    serve_images(iiif_server, "/iiif/3/b/")
    return iiif_server


def create(api, **body):
    return api.post("/api/v1/analyses", body, format="json")


def refused(response, code: str) -> str:
    assert response.status_code == 400, response.content[:400]
    body = response.json()
    assert body["error"] == code, body
    assert body["detail"].endswith(".")
    assert not Analysis.objects.exists()
    return body["detail"]


def test_a_v2_info_json_is_fetched_within_its_max_width(api, ready):
    response = create(api, iiif=ready.url("/iiif/2/a/info.json"), model="clip")

    assert response.status_code == 202, response.content[:400]
    body = response.json()
    # maxWidth 1200 (and so maxHeight 1200) bounds the 6000 × 4000 image to 1200 × 800.
    assert ready.requests[-1] == "/iiif/2/a/full/!1200,800/0/default.jpg"
    assert (body["width"], body["height"]) == (1200, 800)
    assert body["iiif_source"]["service_id"] == ready.url("/iiif/2/a")
    assert body["iiif_source"]["attribution"] == "Courtesy of the Test Museum"
    assert body["iiif_source"]["rights"] == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert body["original_filename"] == "a"


def test_a_v3_image_request_is_read_as_its_service_within_its_max_area(api, ready):
    response = create(api, iiif=ready.url("/iiif/3/b/full/max/0/default.jpg"), model="clip")

    assert response.status_code == 202, response.content[:400]
    assert ready.requests[0] == "/iiif/3/b/info.json"
    width, height = (int(v) for v in ready.requests[-1].split("/")[-3].lstrip("!").split(","))
    assert width * height <= 1_000_000 < (width + 10) * (height + 10)
    assert width / height == pytest.approx(WIDTH / HEIGHT, rel=0.01)
    source = IiifSource.objects.get()
    assert source.rights == "http://rightsstatements.org/vocab/NoC-NC/1.0/"


def test_a_level0_service_is_asked_for_one_of_its_sizes(api, ready, settings):
    settings.IIIF_MAX_SIDE = 1000
    document = info_v2(ready, "a", profile=["http://iiif.io/api/image/2/level0.json"])
    ready.json("/iiif/2/a/info.json", document)

    response = create(api, iiif=ready.url("/iiif/2/a/info.json"), model="clip")

    assert response.status_code == 202, response.content[:400]
    assert ready.requests[-1] == "/iiif/2/a/full/750,/0/default.jpg"


def manifest_v2(server) -> dict:
    def canvas(n: int, name: str) -> dict:
        return {
            "@id": server.url(f"/m2/canvas/{n}"),
            "@type": "sc:Canvas",
            "label": f"folio {n}r",
            "width": WIDTH,
            "height": HEIGHT,
            "thumbnail": {"@id": server.url(f"/iiif/2/{name}/full/80,/0/default.jpg")},
            "images": [
                {
                    "@type": "oa:Annotation",
                    "motivation": "sc:painting",
                    "resource": {
                        "@id": server.url(f"/iiif/2/{name}/full/full/0/default.jpg"),
                        "@type": "dctypes:Image",
                        "service": {
                            "@context": "http://iiif.io/api/image/2/context.json",
                            "@id": server.url(f"/iiif/2/{name}"),
                            "profile": "http://iiif.io/api/image/2/level2.json",
                        },
                    },
                    "on": server.url(f"/m2/canvas/{n}"),
                }
            ],
        }

    return {
        "@context": "http://iiif.io/api/presentation/2/context.json",
        "@id": server.url("/m2/manifest.json"),
        "@type": "sc:Manifest",
        "label": "Book of Hours",
        "attribution": "Provided by the Test Library",
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "sequences": [{"@type": "sc:Sequence", "canvases": [canvas(1, "a"), canvas(2, "a")]}],
    }


def manifest_v3(server) -> dict:
    def canvas(n: int) -> dict:
        canvas_id = server.url(f"/m3/canvas/{n}")
        return {
            "id": canvas_id,
            "type": "Canvas",
            "label": {"en": [f"Panel {n}"]},
            "width": WIDTH,
            "height": HEIGHT,
            "thumbnail": [{"id": server.url("/iiif/3/b/full/80,/0/default.jpg"), "type": "Image"}],
            "items": [
                {
                    "id": f"{canvas_id}/page",
                    "type": "AnnotationPage",
                    "items": [
                        {
                            "id": f"{canvas_id}/painting",
                            "type": "Annotation",
                            "motivation": "painting",
                            "target": canvas_id,
                            "body": {
                                "id": server.url("/iiif/3/b/full/max/0/default.jpg"),
                                "type": "Image",
                                "format": "image/jpeg",
                                "service": [
                                    {
                                        "id": server.url("/iiif/3/b"),
                                        "type": "ImageService3",
                                        "profile": "level1",
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }

    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": server.url("/m3/manifest.json"),
        "type": "Manifest",
        "label": {"en": ["Altarpiece"]},
        "requiredStatement": {
            "label": {"en": ["Attribution"]},
            "value": {"en": ["<span>Test Gallery</span>, public domain"]},
        },
        "rights": "http://creativecommons.org/publicdomain/mark/1.0/",
        "items": [canvas(1), canvas(2), canvas(3)],
    }


def test_a_canvas_of_a_v2_manifest_is_analysed_with_its_source(api, ready):
    url = ready.json("/m2/manifest.json", manifest_v2(ready))

    response = create(api, iiif=url, canvas=ready.url("/m2/canvas/2"), model="clip")

    assert response.status_code == 202, response.content[:400]
    source = IiifSource.objects.get()
    assert (source.manifest_url, source.canvas_id) == (url, ready.url("/m2/canvas/2"))
    assert (source.label, source.canvas_label) == ("Book of Hours", "folio 2r")
    assert source.attribution == "Provided by the Test Library"
    assert source.rights == "https://creativecommons.org/licenses/by/4.0/"
    assert source.analysis.original_filename == "Book of Hours — folio 2r"


def test_a_canvas_of_a_v3_manifest_is_analysed_with_its_required_statement(api, ready):
    url = ready.json("/m3/manifest.json", manifest_v3(ready))

    response = api.post(
        "/api/v1/analyses",
        {"iiif": url, "canvas": ready.url("/m3/canvas/3"), "model": "clip"},
        format="multipart",
    )

    assert response.status_code == 202, response.content[:400]
    source = IiifSource.objects.get()
    assert source.canvas_label == "Panel 3"
    assert (source.attribution_label, source.attribution) == (
        "Attribution",
        "Test Gallery, public domain",
    )
    assert source.service_id == ready.url("/iiif/3/b")
    assert "/iiif/3/b/info.json" in ready.requests


def test_a_manifest_of_several_canvases_needs_a_choice(api, ready):
    url = ready.json("/m3/manifest.json", manifest_v3(ready))
    assert "3 canvases" in refused(create(api, iiif=url, model="clip"), "iiif_canvas_required")


def test_a_canvas_the_manifest_does_not_have_is_refused(api, ready):
    url = ready.json("/m3/manifest.json", manifest_v3(ready))
    refused(
        create(api, iiif=url, canvas=ready.url("/m3/canvas/9"), model="clip"),
        "iiif_unknown_canvas",
    )


def test_a_host_that_is_not_allow_listed_is_never_asked(api, ready, settings):
    settings.IIIF_ALLOWED_HOSTS = ["iiif.example.org"]

    detail = refused(
        create(api, iiif=ready.url("/iiif/2/a/info.json"), model="clip"), "iiif_host_not_allowed"
    )

    assert "127.0.0.1" in detail
    assert ready.requests == []


def test_with_iiif_off_nothing_is_fetched(api, ready, settings):
    settings.IIIF_ALLOWED_HOSTS = []
    refused(create(api, iiif=ready.url("/iiif/2/a/info.json"), model="clip"), "iiif_disabled")
    assert ready.requests == []


def test_a_redirect_to_loopback_is_refused_when_any_host_is_allowed(api, ready, settings):
    settings.IIIF_ALLOW_ANY_HOST = True
    # The server is allow-listed as 127.0.0.1; the redirect names localhost, which is not, so
    # it must resolve to public addresses only: it resolves to loopback.
    target = f"http://localhost:{ready.port}/iiif/2/a/info.json"
    ready.routes["/go"] = Route(status=302, headers={"Location": target})

    detail = refused(create(api, iiif=ready.url("/go"), model="clip"), "iiif_private_address")

    assert "localhost" in detail
    assert ready.requests == ["/go"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # link-local (cloud metadata)
        "http://10.1.2.3/info.json",  # private
        "http://[::1]:8000/info.json",  # loopback, IPv6
        "http://0.0.0.0/info.json",  # unspecified
        "http://224.0.0.1/info.json",  # multicast
        "http://100.64.0.1/info.json",  # shared address space (carrier-grade NAT)
    ],
)
def test_addresses_off_the_public_internet_are_refused_when_any_host_is_allowed(
    api, settings, media, url
):
    settings.IIIF_ALLOWED_HOSTS = []
    settings.IIIF_ALLOW_ANY_HOST = True
    refused(create(api, iiif=url, model="clip"), "iiif_private_address")


def test_a_redirect_to_a_host_that_is_not_listed_is_refused(api, ready):
    ready.routes["/go"] = Route(status=301, headers={"Location": "http://iiif.example.org/x"})
    refused(create(api, iiif=ready.url("/go"), model="clip"), "iiif_host_not_allowed")


def test_redirects_are_followed_a_few_times_only(api, ready, settings):
    settings.IIIF_MAX_REDIRECTS = 2
    ready.routes["/loop"] = Route(status=302, headers={"Location": "/loop"})

    refused(create(api, iiif=ready.url("/loop"), model="clip"), "iiif_too_many_redirects")

    assert ready.requests == ["/loop"] * 3


def test_a_redirect_within_the_allowed_host_is_followed(api, ready):
    ready.routes["/go"] = Route(status=303, headers={"Location": "/iiif/2/a/info.json"})
    assert create(api, iiif=ready.url("/go"), model="clip").status_code == 202


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_an_image_over_the_byte_limit_is_refused(api, ready, settings, declared):
    image = jpeg(1200, 800)
    settings.ANALYSIS_MAX_UPLOAD_BYTES = len(image) // 2
    ready.routes["/iiif/2/a/"] = Route(image, content_type="image/jpeg", declare_length=declared)

    detail = refused(
        create(api, iiif=ready.url("/iiif/2/a/info.json"), model="clip"), "iiif_too_large"
    )

    assert "nothing was kept" in detail


def test_a_body_that_trickles_in_is_cut_off_at_the_deadline(api, ready, settings):
    """A server that sends a byte now and then, each within the read timeout, must not hold
    a web thread for longer than the whole fetch may take."""
    settings.IIIF_TIMEOUT_SECONDS = 2
    settings.IIIF_DEADLINE_SECONDS = 1
    document = b'{"@context": "http://iiif.io/api/image/2/context.json"}' * 4
    ready.routes["/slow/info.json"] = Route(document, drip_seconds=0.05)

    started = time.monotonic()
    detail = refused(create(api, iiif=ready.url("/slow/info.json"), model="clip"), "iiif_too_slow")

    assert time.monotonic() - started < 3  # the whole body would take 11 s
    assert "1 s" in detail


def test_a_non_image_is_refused_as_an_upload_would_be(api, ready):
    ready.routes["/iiif/2/a/"] = Route(
        b"<html><body>Not here</body></html>", content_type="text/html"
    )
    response = create(api, iiif=ready.url("/iiif/2/a/info.json"), model="clip")
    assert response.status_code == 400
    assert response.json()["error"] in ("unsupported_format", "not_an_image")
    assert not Analysis.objects.exists()


def test_a_document_that_is_not_iiif_is_refused(api, ready):
    ready.routes["/page"] = Route(b"<html></html>", content_type="text/html")
    refused(create(api, iiif=ready.url("/page"), model="clip"), "iiif_not_iiif")
    ready.json("/other.json", {"hello": "world"})
    refused(create(api, iiif=ready.url("/other.json"), model="clip"), "iiif_not_iiif")


def test_an_error_answer_is_refused(api, ready):
    refused(create(api, iiif=ready.url("/missing/info.json"), model="clip"), "iiif_bad_response")


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("file:///etc/passwd", "iiif_bad_scheme"),
        ("ftp://127.0.0.1/info.json", "iiif_bad_scheme"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "iiif_bad_scheme"),
        ("127.0.0.1/info.json", "iiif_bad_scheme"),
        ("http://user:secret@127.0.0.1/info.json", "iiif_bad_url"),
        ("http://127.0.0.1:99999/info.json", "iiif_bad_url"),
    ],
)
def test_urls_that_are_not_plain_http_are_refused(api, ready, url, code):
    refused(create(api, iiif=url, model="clip"), code)
    assert ready.requests == []


def test_an_image_and_a_iiif_url_together_are_refused(api, ready):
    from tests.analysis.conftest import upload

    response = upload(api, iiif=ready.url("/iiif/2/a/info.json"), model="clip")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
