"""IIIF in a real browser: a painting brought from a IIIF manifest through the workspace (its
canvases listed with thumbnails the server fetched), analysed by a real worker with its
source shown, then opened in Mirador with every result listed and drawn on the canvas."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.test_portal import (  # noqa: F401  (fixtures, and the journeys' marks)
    accessible_at_both_widths,
    demo_world,
    pytestmark,
    researcher,
    sentences,
    wait_for_results,
)
from tests.iiif.conftest import iiif_server, info_v3, serve_images  # noqa: F401
from tests.iiif.test_iiif_in import manifest_v3

# How many pixels of Mirador's annotation layer are drawn (not transparent): the canvas it
# lays over OpenSeadragon's image, in a box of its own inside `.openseadragon-canvas`.
DRAWN_PIXELS = """() => {
  const layer = document.querySelector('#mirador .openseadragon-canvas > div > canvas');
  if (!layer || !layer.width || !layer.height) return 0;
  const { data } = layer.getContext('2d').getImageData(0, 0, layer.width, layer.height);
  let drawn = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i]) drawn += 1;
  return drawn;
}"""


def loaded(page: Page, selector: str) -> None:
    page.wait_for_function(
        "(selector) => [...document.querySelectorAll(selector)].every("
        "(image) => image.complete && image.naturalWidth > 0)",
        arg=selector,
    )


def test_a_canvas_of_a_iiif_manifest_is_analysed_and_opened_in_mirador(
    page,
    researcher,  # noqa: F811  (a fixture)
    iiif_server,  # noqa: F811
    screenshots,
    page_guard,
):
    iiif_server.json("/iiif/3/b/info.json", info_v3(iiif_server, "b"))
    serve_images(iiif_server, "/iiif/3/b/")
    url = iiif_server.json("/m3/manifest.json", manifest_v3(iiif_server))

    # The workspace's IIIF form; a manifest of three canvases asks which one.
    page.goto("/workspace/")
    page.get_by_label("IIIF address").fill(url)
    page.get_by_role("button", name="Fetch and analyse").click()
    expect(page.get_by_role("heading", name="Altarpiece: choose a canvas")).to_be_visible()
    expect(page.locator(".af-canvases img")).to_have_count(3)
    loaded(page, ".af-canvases img")
    screenshots("canvases")
    accessible_at_both_widths(page)

    # The second canvas: analysed, with where it came from and its terms on the page.
    page.get_by_role("button", name=re.compile("Panel 2")).click()
    wait_for_results(page)
    source = page.locator(".af-iiif-source")
    expect(source).to_contain_text("Altarpiece, Panel 2")
    expect(source).to_contain_text("Attribution: Test Gallery, public domain")
    expect(source.get_by_role("link", name="Altarpiece")).to_have_attribute("href", url)
    screenshots("analysis")
    first = sentences(page)[0]
    count = page.locator(".af-hit").count()

    # Mirador 4.0.0 reads `element.ref`, which React 19 reports as a console error.
    page_guard.expect_console(
        "Accessing element.ref was removed in React 19", "/static/vendor/mirador/mirador.min.js"
    )

    # Mirador: the annotation panel lists every result, and their boxes are drawn.
    page.get_by_role("link", name="Open in IIIF viewer").click()
    expect(page).to_have_url(re.compile(r"/analyses/[0-9a-f-]+/viewer/$"))
    panel = page.locator("#mirador")
    expect(panel.get_by_text(re.compile(rf"{count} annotations?", re.I))).to_be_visible(
        timeout=30_000
    )
    expect(panel.get_by_text(first, exact=False).first).to_be_visible()
    page.wait_for_function(f"() => ({DRAWN_PIXELS})() > 0")
    screenshots("mirador", full_page=False)
    accessible_at_both_widths(page)
