"""The library from the pages a researcher works on: save an analysis, pin and annotate
sentences, export the pins, add sentences and works to a collection from result cards, the
work page and search results, copy a formatted citation — in a real browser, with the demo
world and a real model worker."""

from __future__ import annotations

import json
import re

import bibtexparser
from playwright.sync_api import Page, expect

from apps.corpus.models import Work
from apps.library import services
from apps.library.models import Collection, PinnedSentence, SavedAnalysis
from tests.browser.test_portal import (  # noqa: F401  (fixtures, and the journeys' marks)
    accessible_at_both_widths,
    analyse_example,
    analysis_path,
    demo_world,
    pytestmark,
    researcher,
    sentences,
)


def navigations(page: Page) -> int:
    return page.evaluate("() => performance.getEntriesByType('navigation').length")


def test_save_pin_annotate_export_collect_and_cite(
    page,
    researcher,  # noqa: F811  (a fixture)
    live_server,
    screenshots,
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    analyse_example(page, "The White Bird")
    analysis_id = analysis_path(page).split("/")[2]
    cards = page.locator(".af-hit")
    first_id = cards.nth(0).get_attribute("id").removeprefix("hit-")
    first_text = sentences(page)[0]

    # Save to library, with tags.
    page.get_by_text("Save to library").click()
    page.get_by_label("Tags").fill("Birds, night")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert").or_(page.locator(".alert"))).to_contain_text(
        "Saved to your library as"
    )
    expect(page.locator(".af-saved")).to_contain_text("[Demo] The White Bird")
    saved = SavedAnalysis.objects.get(analysis_id=analysis_id)
    assert saved.tags == ["birds", "night"]

    # Pin the first sentence: the card says so and the pinned list holds it, with a note.
    cards.nth(0).get_by_role("button", name="Pin", exact=True).click()
    expect(page).to_have_url(re.compile(rf"#hit-{first_id}$"))
    pinned = page.locator(f"#hit-{first_id}").get_by_role("button", name=re.compile("^Pinned"))
    expect(pinned).to_have_attribute("aria-pressed", "true")
    pins = page.locator(".af-pins")
    expect(pins).to_contain_text(first_text)
    pins.get_by_label("Your note on this sentence").fill("Compare plate 4 of the catalogue.")
    pins.get_by_role("button", name="Save note").click()
    # The note is a plain form post that comes back to the pin: wait for that page, or the
    # export link below is clicked on the page being left and its download is lost.
    page.wait_for_url(re.compile(r"#pin-\d+$"))
    expect(pins.get_by_label("Your note on this sentence")).to_have_value(
        "Compare plate 4 of the catalogue."
    )
    assert PinnedSentence.objects.get(saved=saved).annotation == (
        "Compare plate 4 of the catalogue."
    )
    with page.expect_download() as download:
        pins.get_by_role("link", name="BibTeX").click()
    exported = bibtexparser.parse_string(download.value.path().read_text())
    assert not exported.failed_blocks
    assert "plate 4" in exported.entries[0]["note"]
    screenshots("pinned")
    accessible_at_both_widths(page)

    # Add the second sentence to a new collection, in place (htmx: no page load).
    second = cards.nth(1)
    second_id = second.get_attribute("id").removeprefix("hit-")
    loads = navigations(page)
    second.get_by_text("Add to collection").click()
    second.get_by_label("Name, for a new one").fill("Paper draft")
    second.get_by_role("button", name="Add", exact=True).click()
    expect(second.locator(".af-collect-status")).to_have_text("Added to “Paper draft”.")
    assert navigations(page) == loads
    collection = Collection.objects.get(owner=researcher, name="Paper draft")
    assert list(collection.entries.values_list("sentence_id", flat=True)) == [second_id]
    expect(second.get_by_label("Collection")).to_have_value(str(collection.pk))
    screenshots("collected", full_page=False)

    # Cite: the clipboard holds the Chicago reference, and the live region says so.
    work_href = cards.nth(0).locator("[data-work-panel]").get_attribute("href")
    work = Work.objects.get(pk=work_href.strip("/").split("/")[-1])
    cards.nth(0).locator("summary", has_text=re.compile("^Cite")).click()
    cards.nth(0).get_by_role("button", name="Copy Chicago").click()
    expect(page.locator("#copy-status")).to_have_text(
        "Copied the Chicago citation to the clipboard."
    )
    chicago = services.format_citation(work, "chicago-author-date").text
    assert page.evaluate("() => navigator.clipboard.readText()") == chicago

    # The work's page: Highwire tags for Zotero, and the work itself into the collection.
    page.goto(f"/works/{work.pk}/")
    # The links and the Cite menu share one row; a menu inside a paragraph would close it
    # early and leave an empty one behind.
    expect(page.locator(".af-work-actions > details.af-menu")).to_have_count(1)
    expect(page.locator("main p:empty:not([role='status'])")).to_have_count(0)
    title = page.locator('meta[name="citation_title"]')
    expect(title).to_have_attribute("content", work.display_title)
    expect(page.locator('meta[name="citation_doi"]')).to_have_attribute(
        "content", re.compile(r"^10\.5555/")
    )
    page.get_by_text("Add the work to a collection").click()
    page.get_by_label("Collection").select_option(label="Paper draft")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".af-collect-status")).to_have_text("Added to “Paper draft”.")
    page.locator("summary", has_text=re.compile("^Cite")).click()
    page.get_by_role("button", name="Copy APA").click()
    expect(page.locator(f"#work-{work.pk}-status")).to_contain_text("Copied the APA citation")
    accessible_at_both_widths(page)

    # Search results: a card's sentence into the same collection; the filters stay with the words.
    page.goto("/search/?q=a+white+horse&model=clip")
    expect(page.locator(".af-hit").first).to_be_visible()
    hit = page.locator(".af-hit").first
    hit.get_by_text("Add to collection").click()
    hit.get_by_role("button", name="Add", exact=True).click()
    expect(hit.locator(".af-collect-status")).to_have_text("Added to “Paper draft”.")
    assert collection.entries.count() == 3
    page.get_by_label("Text to search for").fill("a red windmill")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(r"q=a\+red\+windmill.*model=clip"))
    screenshots("search-collect")
    accessible_at_both_widths(page)

    # The collection's CSL-JSON export holds all three, the sentences as notes.
    items = json.loads(services.export_collection(collection, "json").text)
    assert work.display_title in {item["title"] for item in items}
    assert sum(1 for item in items if item.get("note")) >= 1
