"""IIIF on the portal's pages: the workspace's IIIF form and the list of a manifest's canvases
(their thumbnails fetched by the server), the source and terms on the analysis page, and the
viewer pages — against the real local IIIF server of `conftest`."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from apps.analysis.models import Analysis, IiifSource
from apps.library import services as library_services
from tests.iiif.conftest import image_size, info_v3, serve_images
from tests.iiif.test_iiif_in import manifest_v3

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(django_user_model):
    return django_user_model.objects.create_user("ada", password="a-long-passphrase-42")


@pytest.fixture
def browser(client: Client, researcher) -> Client:
    client.force_login(researcher)
    return client


@pytest.fixture
def ready(media, redis_connection, iiif_server):
    iiif_server.json("/iiif/3/b/info.json", info_v3(iiif_server, "b"))
    serve_images(iiif_server, "/iiif/3/b/")
    iiif_server.json("/m3/manifest.json", manifest_v3(iiif_server))
    return iiif_server


def thumbnails(html: str) -> list[str]:
    return re.findall(r'<img src="(/workspace/iiif/thumbnails/[^"]+)"', html)


def test_the_workspace_offers_the_iiif_form_only_when_iiif_in_is_on(browser, settings):
    settings.IIIF_ALLOWED_HOSTS = ["iiif.example.org"]
    page = browser.get("/workspace/").content.decode()
    assert 'action="/workspace/iiif/"' in page
    assert 'name="url"' in page

    settings.IIIF_ALLOWED_HOSTS = []
    settings.IIIF_ALLOW_ANY_HOST = False
    assert 'action="/workspace/iiif/"' not in browser.get("/workspace/").content.decode()
    assert browser.get("/workspace/iiif/").status_code == 404
    assert (
        browser.post("/workspace/iiif/", {"url": "https://x.org/m", "model": "clip"}).status_code
        == 404
    )


def test_a_manifest_of_several_canvases_lists_them_with_thumbnails(browser, ready):
    url = ready.url("/m3/manifest.json")

    response = browser.post("/workspace/iiif/", {"url": url, "model": "clip"})

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == "/workspace/iiif/"
    assert parse_qs(target.query) == {"url": [url], "model": ["clip"]}
    assert not Analysis.objects.exists()
    page = browser.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "Altarpiece: choose a canvas" in html
    for n in (1, 2, 3):
        assert f'value="{ready.url(f"/m3/canvas/{n}")}"' in html
        assert f"Panel {n}" in html
    pictures = thumbnails(html)
    assert len(pictures) == 3

    asked = len(ready.requests)
    picture = browser.get(pictures[0])
    assert picture.status_code == 200
    assert picture["Content-Type"] == "image/jpeg"
    assert max(image_size(picture.content)) <= 240
    assert ready.requests[asked:] == ["/iiif/3/b/full/80,/0/default.jpg"]


def test_a_thumbnail_address_the_page_did_not_sign_is_never_fetched(browser, ready):
    page = browser.get("/workspace/iiif/", {"url": ready.url("/m3/manifest.json"), "model": "clip"})
    signed = thumbnails(page.content.decode())[0].rsplit("/", 1)[1]
    asked = len(ready.requests)

    for forged in (signed[:-2] + "xx", "http:127.0.0.1:1"):
        assert browser.get(f"/workspace/iiif/thumbnails/{forged}").status_code == 404
    assert len(ready.requests) == asked


def test_a_chosen_canvas_becomes_an_analysis_that_shows_its_source_and_terms(browser, ready):
    url = ready.url("/m3/manifest.json")

    response = browser.post(
        "/workspace/iiif/", {"url": url, "canvas": ready.url("/m3/canvas/2"), "model": "clip"}
    )

    assert response.status_code == 302
    analysis = Analysis.objects.get()
    assert response["Location"].startswith(f"/analyses/{analysis.pk}/")
    assert IiifSource.objects.get(analysis=analysis).canvas_label == "Panel 2"
    html = browser.get(response["Location"]).content.decode()
    assert f'<a href="{url}" rel="noopener noreferrer">Altarpiece</a>, Panel 2' in html
    assert "Attribution: Test Gallery, public domain" in html
    assert 'href="http://creativecommons.org/publicdomain/mark/1.0/"' in html


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("https://elsewhere.example.org/manifest.json", "is not one of them"),
        ("file:///etc/passwd", "Only http and https URLs are fetched"),
        ("", "This field is required"),
    ],
)
def test_a_refused_address_is_a_form_error_and_leaves_nothing(browser, ready, url, sentence):
    response = browser.post("/workspace/iiif/", {"url": url, "model": "clip"})

    assert response.status_code == 400
    html = response.content.decode()
    error = re.search(
        r'<p class="text-danger small mb-0 mt-1" id="id_url_error" role="alert">([^<]+)</p>', html
    )
    assert error, html[-2000:]
    assert sentence in error.group(1)
    assert not Analysis.objects.exists()


def test_a_loopback_address_is_refused_when_any_host_is_allowed(browser, ready, settings):
    settings.IIIF_ALLOWED_HOSTS = []
    settings.IIIF_ALLOW_ANY_HOST = True

    response = browser.post(
        "/workspace/iiif/", {"url": ready.url("/m3/manifest.json"), "model": "clip"}
    )

    assert response.status_code == 400
    assert "not on the public internet" in response.content.decode()
    assert ready.requests == []


def test_the_viewer_loads_the_analysis_manifest(browser, researcher, make_analysis):
    analysis = make_analysis(researcher)

    html = browser.get(f"/analyses/{analysis.pk}/").content.decode()
    assert f'href="/analyses/{analysis.pk}/viewer/"' in html

    page = browser.get(f"/analyses/{analysis.pk}/viewer/")
    assert page.status_code == 200
    html = page.content.decode()
    manifest = f"http://testserver/api/v1/analyses/{analysis.pk}/iiif/manifest.json"
    assert f'data-manifest="{manifest}"' in html
    assert "/static/vendor/mirador/mirador.min.js" in html
    policy = dict(part.strip().split(" ", 1) for part in page["Content-Security-Policy"].split(";"))
    # Mirador's empty <style> elements are admitted by the empty string's hash, nothing more.
    assert policy["style-src"] == "'self' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
    assert policy["script-src"] == "'self'"
    assert "'sha256" not in browser.get(f"/analyses/{analysis.pk}/")["Content-Security-Policy"]
    assert browser.get(manifest).status_code == 200  # the viewer reads it with the session


def test_a_share_link_opens_its_analysis_in_the_viewer(researcher, make_analysis):
    saved = library_services.save_analysis(researcher, make_analysis(researcher), name="Shared")
    link, token = library_services.create_share_link(researcher, saved=saved)
    anonymous = Client()

    assert (
        f'href="/shared/{token}/iiif/viewer"' in anonymous.get(f"/shared/{token}/").content.decode()
    )
    page = anonymous.get(f"/shared/{token}/iiif/viewer")
    assert page.status_code == 200
    assert (
        f'data-manifest="http://testserver/shared/{token}/iiif/manifest.json"'
        in page.content.decode()
    )

    library_services.revoke_share_link(link)
    assert anonymous.get(f"/shared/{token}/iiif/viewer").status_code == 404
