"""The library's pages in a real browser: a collection put in order by keyboard, exported and
shared with a visitor who has no account; a saved analysis found again by search and tag,
reopened on its cell, and shared with its image and pins.

The entries, the saved analysis and its pins are made through the services (the buttons on
the analysis page and on result cards that make them are tested with those pages).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import bibtexparser
import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from apps.analysis.models import Analysis, AnalysisResult
from apps.corpus.models import Sentence, Work
from apps.demo.quality import WEIGHTS
from apps.library import services
from tests.browser.conftest import DESKTOP, PageGuard
from tests.browser.test_portal import (  # noqa: F401  (fixtures)
    accessible_at_both_widths,
    analyse_example,
    demo_world,
    researcher,
)
from tests.demo.test_demo_end_to_end import DemoModels

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        not (WEIGHTS / "clip" / "model.safetensors").is_file(),
        reason="the demo weights are not committed yet (train them: manage.py train_demo_model)",
    ),
]


@pytest.fixture
def demo_corpus(settings, media, django_user_model, logged_in):
    """The demo corpus without a model worker (the collection's pages rank nothing), and a
    researcher signed in."""
    settings.MODEL_SETTINGS = DemoModels.settings
    call_command("load_demo")
    ada = django_user_model.objects.create_user("ada", "ada@example.org", "a-long-passphrase-42")
    logged_in(ada)
    return ada


@contextmanager
def visitor(page: Page, live_server) -> Iterator[tuple[Page, PageGuard]]:
    """A browser of someone with no account: a context of its own, no cookies, watched like
    the test's own page (the test fails on its console errors, failed requests, CSP
    violations)."""
    context = page.context.browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    guard = PageGuard(origin=live_server.url)
    guard.attach(context, tab)
    try:
        yield tab, guard
        guard.check()
    finally:
        context.close()


def entry_titles(page: Page) -> list[str]:
    return [title.strip() for title in page.locator(".af-entry .af-entry-title").all_inner_texts()]


def share(page: Page) -> str:
    """Create a share link on the page open and return its URL, shown this once."""
    page.get_by_role("button", name="Create a share link").click()
    link = page.get_by_label("Link", exact=True)
    expect(link).to_have_value(re.compile(r"/shared/[A-Za-z0-9_-]{40,}/$"))
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator("#new-share-status")).to_have_text("Copied to the clipboard.")
    return link.input_value()


def test_a_collection_is_ordered_by_keyboard_exported_and_shared_until_revoked(
    page, demo_corpus, live_server, screenshots, tmp_path
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto("/library/")
    expect(page.get_by_text("Nothing saved yet.")).to_be_visible()
    page.get_by_label("Name").fill("Birds in landscape")
    page.get_by_label("Description").fill("Sources for the second chapter.")
    page.get_by_role("button", name="Create collection").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Birds in landscape")
    expect(page.get_by_text("This collection is empty.")).to_be_visible()

    collection = demo_corpus.collections.get()
    works = list(Work.objects.filter(published=True).order_by("id")[:3])
    sentence = Sentence.objects.filter(published=True).exclude(work__in=works).first()
    for work in works:
        services.add_to_collection(collection, work_id=work.id)
    services.add_to_collection(collection, sentence_id=sentence.id)
    page.reload()
    titles = [work.display_title for work in works] + [sentence.work.display_title]
    assert entry_titles(page) == titles
    expect(page.locator(".af-entry").nth(3)).to_contain_text(sentence.text)
    screenshots("collection")
    accessible_at_both_widths(page)

    # Tab to the first entry's "Move down" and press Enter: it goes one down, and the focus
    # comes back to its "Move down", now in the second place.
    page.get_by_role("link", name="CSL-JSON").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent").startswith("Move down"):
            break
    first = page.locator(".af-entry").first
    expect(first.get_by_role("button", name=re.compile("^Move down"))).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"\?moved="))
    assert entry_titles(page) == [titles[1], titles[0], *titles[2:]]
    second = page.locator(".af-entry").nth(1)
    expect(second.get_by_role("button", name=re.compile("^Move down"))).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # "Move up" of the same entry: back to the top
    page.wait_for_url(re.compile(r"dir=up"))
    assert entry_titles(page) == titles
    # At the top its "Move up" is disabled: the focus goes to its "Move down".
    first = page.locator(".af-entry").first
    expect(first.get_by_role("button", name=re.compile("^Move down"))).to_be_focused()

    # The BibTeX export downloads and parses: one entry per work.
    with page.expect_download() as download:
        page.get_by_role("link", name="BibTeX").click()
    assert download.value.suggested_filename == "birds-in-landscape.bib"
    bib = bibtexparser.parse_string(download.value.path().read_text())
    assert len(bib.entries) == 4

    # A share link, opened by a visitor with no account, then revoked.
    url = share(page)
    expect(page.locator("[data-testid=share-row]")).to_contain_text("Active")
    screenshots("collection-shared")
    path = urlsplit(url).path
    with visitor(page, live_server) as (guest, guard):
        guest.goto(path)
        expect(guest.get_by_role("heading", level=1)).to_have_text("Birds in landscape")
        expect(guest.get_by_text("Shared collection · read-only")).to_be_visible()
        expect(guest.locator(".af-entry")).to_have_count(4)
        expect(guest.get_by_role("button")).to_have_count(0)  # nothing to change
        expect(guest.get_by_role("link", name="Log in")).to_be_visible()
        page.goto(path)
        screenshots("shared-collection")
        accessible_at_both_widths(page)

        page.goto(f"/library/collections/{collection.pk}/")
        page.get_by_role("button", name=re.compile("^Revoke")).click()
        expect(page.locator("[data-testid=share-row]")).to_contain_text("Revoked")
        guard.expect_status(404, path)
        guest.reload()
        expect(guest.get_by_role("heading", level=1)).to_have_text(
            "Nothing is shared at this address"
        )


def test_a_saved_analysis_is_found_reopened_on_its_cell_and_shared_with_its_pins(
    page,
    researcher,  # noqa: F811  (the fixture imported above)
    live_server,
    screenshots,
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    analyse_example(page, "The White Bird")
    analysis = Analysis.objects.get(owner=researcher)
    best = AnalysisResult.objects.filter(analysis=analysis, cell_row=None).order_by("rank")[0]
    saved = services.save_analysis(
        researcher,
        analysis,
        name="White bird, upper left",
        notes="The bird against the sky; compare the harbour scenes.",
        tags=["birds", "sky"],
        cell=(2, 3),
    )
    services.pin_sentence(saved, sentence_id=best.sentence_id, annotation="The closest match.")
    analyse_example(page, "Church Tower over Field")
    services.save_analysis(
        researcher, Analysis.objects.exclude(pk=analysis.pk).get(), name="Tower", tags=["church"]
    )

    page.get_by_role("link", name="Library").click()
    expect(page.locator("[data-testid=saved-item]")).to_have_count(2)
    screenshots("library")
    accessible_at_both_widths(page)

    # Search over the pinned annotation, then the tag chip as a filter.
    page.get_by_label("Search your saved analyses").fill("closest match")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("[data-testid=saved-item]")).to_have_count(1)
    expect(page.locator("[data-testid=saved-item]")).to_contain_text("White bird, upper left")
    page.get_by_role("link", name="Clear").click()
    page.get_by_role("link", name="church", exact=True).click()
    assert parse_qs(urlsplit(page.url).query) == {"tag": ["church"]}
    expect(page.locator("[data-testid=saved-item]")).to_have_count(1)
    expect(page.get_by_label("Tag", exact=True)).to_have_value("church")
    page.get_by_role("link", name="Clear").click()

    # One click reopens the analysis on the cell it was saved with.
    page.get_by_role("link", name="White bird, upper left", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/analyses/{analysis.pk}/\?.*cell=2%2C3"))
    expect(page.locator("#results-heading")).to_have_text("Sentences for row 3, column 4")

    # Its edit page shares it; the visitor sees the painting, the pin and the cell's results.
    page.goto(f"/library/saved/{saved.pk}/")
    url = share(page)
    screenshots("saved-shared")
    accessible_at_both_widths(page)
    path = urlsplit(url).path
    with visitor(page, live_server) as (guest, _guard):
        guest.goto(path)
        expect(guest.get_by_role("heading", level=1)).to_have_text("White bird, upper left")
        image = guest.get_by_role("img", name=re.compile("The painting"))
        expect(image).to_have_attribute("src", f"{path}image")
        assert image.evaluate("(img) => img.decode().then(() => img.naturalWidth)") > 0
        expect(guest.locator("[data-testid=pin]")).to_contain_text("The closest match.")
        expect(guest.locator("#results-title")).to_have_text("Sentences for row 3, column 4")
        expect(guest.locator("[data-testid=result]").first).to_be_visible()
        assert not guest.locator("main a[href^='/analyses/'], main a[href^='/works/']").count()
    page.goto(path)
    screenshots("shared-analysis")
    screenshots("shared-analysis-window", full_page=False)
    accessible_at_both_widths(page)
