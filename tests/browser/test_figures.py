"""Figures of scholarship in a real browser: a plate of the demo corpus uploaded through the
workspace finds its own article on the Figures tab, a hit opens its figure panel (caption,
work, "Open the work"), a cell keeps the tab, and text search has the same tab."""

from __future__ import annotations

import re

from django.core.files.storage import default_storage
from playwright.sync_api import Page, expect

from apps.corpus.models import WorkImage
from tests.browser.test_iiif import loaded
from tests.browser.test_portal import (  # noqa: F401  (fixtures, and the journeys' marks)
    JOB_MS,
    WHOLE,
    accessible_at_both_widths,
    demo_world,
    pytestmark,
    researcher,
    wait_for_results,
)


def figure_tab(page: Page) -> None:
    tabs = page.get_by_role("navigation", name="Results")
    tabs.get_by_role("link", name="Figures").click()
    expect(tabs.get_by_role("link", name="Figures")).to_have_attribute("aria-current", "page")
    expect(page.locator(".af-figure-hit").first).to_be_visible(timeout=JOB_MS)
    loaded(page, ".af-figure-hit:first-child img")


def test_a_plate_finds_its_article_among_the_figures_and_opens_its_panel(
    page,
    researcher,  # noqa: F811  (a fixture)
    screenshots,
):
    plate = WorkImage.objects.select_related("work").order_by("work_id", "position")[7]
    page.goto("/workspace/")
    page.get_by_label("Choose a file").set_input_files(default_storage.path(plate.image.name))
    page.get_by_role("button", name="Analyse", exact=True).click()
    expect(page).to_have_url(re.compile(r"/analyses/[0-9a-f-]+/\?model="))
    wait_for_results(page, WHOLE)

    figure_tab(page)
    assert "tab=figures" in page.url
    expect(page.locator("#results-heading")).to_have_text("Figures like the whole painting")
    first = page.locator(".af-figure-hit").first
    expect(first.locator(".af-rank")).to_have_text("#1")
    expect(first.locator(".af-figure-work")).to_contain_text(plate.work.display_title[:40])
    expect(page.locator(".af-hit")).to_have_count(0)
    screenshots("figures-tab")
    accessible_at_both_widths(page)

    # The plate opens in the dialog: its caption and its work; "Open the work" swaps in the
    # work's panel; closing gives focus back to the plate that opened it.
    link = first.locator("a")
    link.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#work-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#work-dialog-title")).to_have_text(
        re.compile(rf"^Figure {plate.position + 1} of ")
    )
    expect(dialog.locator("figcaption")).to_have_text(plate.caption or re.compile("no caption"))
    loaded(page, "#work-dialog figure img")
    screenshots("figure-panel", full_page=False)
    accessible_at_both_widths(page)
    dialog.get_by_role("link", name="Open the work").click()
    expect(dialog.locator("[data-work-title]")).to_have_text(plate.work.display_title)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(link).to_be_focused()

    # A cell keeps the tab: its own figures.
    page.locator("a.af-cell[data-row='3'][data-col='3']").click()
    expect(page.locator("#results-heading")).to_have_text("Figures like row 4, column 4")
    assert "tab=figures" in page.url
    assert "cell=3%2C3" in page.url
    expect(page.locator(".af-figure-hit").first).to_be_visible()
    # And back to the sentences of that cell.
    page.get_by_role("navigation", name="Results").get_by_role("link", name="Sentences").click()
    expect(page.locator("#results-heading")).to_have_text("Sentences for row 4, column 4")
    expect(page.locator(".af-hit").first).to_be_visible()


def test_text_search_has_a_figures_tab(
    page,
    researcher,  # noqa: F811  (a fixture)
    screenshots,
):
    page.goto("/search/")
    page.get_by_label("Text to search for").fill("a white horse in a field")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator(".af-hit").first).to_be_visible(timeout=JOB_MS)
    figure_tab(page)
    expect(page.locator("#results-heading")).to_have_text(
        re.compile(r"^\d+ figures? from the scholarship$")
    )
    # A new search from the words' form stays on the figures.
    page.get_by_label("Text to search for").fill("a ship at sea")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator(".af-figure-hit").first).to_be_visible(timeout=JOB_MS)
    assert "tab=figures" in page.url
    screenshots("search-figures")
    accessible_at_both_widths(page)
