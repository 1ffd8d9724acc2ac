"""The research portal in a real browser: the demo world (corpus, example gallery) in the test
database and one real model worker, driven through the pages as a researcher uses them.

Each test loads the demo world and starts a worker (some 15 s), so the tests are long
journeys rather than one check each.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from PIL import Image
from playwright.sync_api import Page, expect

from apps.analysis import services
from apps.analysis.models import Heatmap
from apps.corpus.models import Creator, Topic, Work
from apps.demo.quality import WEIGHTS
from apps.demo.scenes import make_scene
from apps.engine.config import SHARED_DIR
from tests.browser.axe import assert_accessible
from tests.browser.conftest import DESKTOP, PHONE
from tests.conftest import Workers
from tests.demo.test_demo_end_to_end import DemoModels

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        not (WEIGHTS / "clip" / "model.safetensors").is_file(),
        reason="the demo weights are not committed yet (train them: manage.py train_demo_model)",
    ),
]

PASSWORD = "a-long-passphrase-42"
LAST_SUPPER = (
    SHARED_DIR / "artworks" / "The_Last_Supper_-_Leonardo_Da_Vinci_-_High_Resolution_32x16.jpg"
)
# A job of the demo model takes a second or two; this leaves room for a busy machine.
JOB_MS = 120_000
WHOLE = "Sentences for the whole painting"
SETTLED = "() => document.getAnimations().every((a) => a.playState !== 'running')"


@pytest.fixture
def demo_world(settings, media, redis_connection) -> Workers:
    """The demo corpus, gallery and user in the test database, and one listening worker."""
    settings.MODEL_SETTINGS = DemoModels.settings
    call_command("load_demo")
    pool = Workers(DemoModels(), media, settings.REDIS_URL)
    pool.start_listening()
    yield pool
    pool.stop()


@pytest.fixture
def researcher(demo_world, logged_in):
    """A researcher of the demo world, signed in."""
    ada = get_user_model().objects.create_user("ada", "ada@example.org", PASSWORD)
    logged_in(ada)
    return ada


def accessible_at_both_widths(page: Page) -> None:
    """axe at 1440 and at 390 px, with the mouse off the page and transitions finished (a
    button caught fading back from its hover colour would read as poor contrast)."""
    page.mouse.move(0, 0)
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.wait_for_function(SETTLED)
        assert_accessible(page)
    page.set_viewport_size(DESKTOP)


def scroll_to_top(page: Page) -> None:
    """The window and the painting's column (which scrolls by itself on wide screens)."""
    page.mouse.move(0, 0)
    page.evaluate(
        "() => { window.scrollTo(0, 0); document.querySelector('.af-stage-col').scrollTop = 0; }"
    )


def wait_for_results(page: Page, heading: str | re.Pattern = WHOLE) -> None:
    """Wait, without ever reloading, until the progress panel has gone by itself (the page
    reloads when the job ends) and the results are shown."""
    polling = page.locator("#progress").count() > 0
    expect(page.locator("#progress")).to_have_count(0, timeout=JOB_MS)
    if polling:  # htmx reloaded the page on the progress view's HX-Refresh
        assert page.evaluate("() => performance.getEntriesByType('navigation')[0].type") == (
            "reload"
        )
    expect(page.locator("#results-heading")).to_have_text(heading)
    expect(page.locator(".af-hit").first).to_be_visible()


def sentences(page: Page) -> list[str]:
    return [text.strip() for text in page.locator(".af-sentence").all_inner_texts()]


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def analysis_path(page: Page) -> str:
    return urlsplit(page.url).path


def analyse_example(page: Page, title: str) -> None:
    page.goto("/workspace/")
    page.get_by_role("button", name=re.compile(re.escape(title))).click()
    expect(page).to_have_url(re.compile(r"/analyses/[0-9a-f-]+/\?model="))
    wait_for_results(page)


def open_filters(page: Page) -> None:
    details = page.locator(".af-filter-details")
    if details.get_attribute("open") is None:
        details.locator("summary").click()


def wide_demo_scene(folder: Path) -> Path:
    """A 2:1 PNG (a demo scene on a wider canvas), for when the real paintings are absent."""
    image, _scene = make_scene(424_242)
    canvas = Image.new("RGB", (image.width * 2, image.height), (240, 236, 226))
    canvas.paste(image, (image.width // 2, 0))
    path = folder / "wide-scene.png"
    canvas.save(path, format="PNG")
    return path


def test_a_new_researcher_uploads_a_painting_and_walks_its_grid_by_keyboard(
    page, demo_world, screenshots, tmp_path
):
    # Sign up through the form: the account lands on the workspace.
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("E-mail address").fill("ada@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Workspace")).to_be_visible()
    expect(page.locator(".af-example")).to_have_count(12)
    screenshots("workspace")
    accessible_at_both_widths(page)
    # The search box over the topics hides the topics that do not match.
    page.get_by_label("Search topics").fill("mari")
    expect(page.locator("#ws-topic-list .form-check:visible")).to_have_count(1)
    expect(page.locator("#ws-topic-list .form-check:visible")).to_contain_text("Maritime")
    page.get_by_label("Search topics").fill("")
    expect(page.locator("#ws-topic-list .form-check:visible")).to_have_count(8)

    # Upload a painting that is not square through the file input.
    if LAST_SUPPER.is_file():
        painting = LAST_SUPPER
    else:
        warnings.warn(
            f"{LAST_SUPPER} is absent: the upload of a real painting is skipped, a wide demo "
            "scene is uploaded instead",
            stacklevel=1,
        )
        painting = wide_demo_scene(tmp_path)
    # The file input is visually hidden; tabbed to, its label shows the focus ring.
    page.locator("#user-menu").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Choose a file")).to_be_focused()
    choose = page.locator("label", has_text="Choose a file")
    assert choose.evaluate("(label) => getComputedStyle(label).outlineStyle") == "solid"
    page.get_by_label("Choose a file").set_input_files(painting)
    expect(page.locator("#upload-status")).to_have_text(f"{painting.name} is ready: press Analyse.")
    expect(page.locator("[data-preview-image]")).to_be_visible()
    screenshots("upload-chosen")
    page.get_by_role("button", name="Analyse", exact=True).click()
    expect(page).to_have_url(re.compile(r"/analyses/[0-9a-f-]+/\?model=paintingclip"))
    expect(page.get_by_role("heading", level=1)).to_have_text(painting.name)
    wait_for_results(page)
    whole_url = page.url
    whole_sentences = sentences(page)
    assert len(whole_sentences) == 25
    # A wide painting: the grid covers all of it, 7 cells high and round(7 × aspect) wide
    # (14 for The Last Supper's 2:1).
    width, height = image_size(page)
    columns = math.floor(7 * width / height + 0.5)
    assert columns > 7
    grid = page.locator("[data-grid]")
    expect(grid).to_have_attribute("data-rows", "7")
    expect(grid).to_have_attribute("data-cols", str(columns))
    expect(page.locator("a.af-cell[data-cell]")).to_have_count(7 * columns)
    view_box = page.locator("[data-view-box]").get_attribute("data-view-box").split(",")
    assert [float(value) for value in view_box] == pytest.approx([0, 0, width, height], abs=1)
    screenshots("results-with-grid")
    screenshots("results-with-grid-window", full_page=False)
    accessible_at_both_widths(page)

    # The grid by keyboard: Tab from the toolbar to the first cell, arrows, Enter, Escape.
    page.get_by_role("button", name="Heatmaps for the top 5").focus()
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("aria-label", "Row 1, column 1")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    expect(page.locator(":focus")).to_have_attribute("aria-label", "Row 2, column 3")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator(":focus")).to_have_attribute("aria-label", "Row 3, column 2")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]cell=2%2C1(&|$)"))
    wait_for_results(page, "Sentences for row 3, column 2")
    assert query(page)["cell"] == ["2,1"]
    # The chosen cell is marked and keeps the focus, so the arrows go on from there.
    chosen = page.get_by_role("link", name="Row 3, column 2")
    expect(chosen).to_have_attribute("aria-current", "true")
    expect(chosen).to_be_focused()
    assert sentences(page) != whole_sentences
    screenshots("cell")
    page.keyboard.press("Escape")
    wait_for_results(page)
    assert "cell" not in query(page)
    assert sentences(page) == whole_sentences

    # The "Grid" toggle hides and shows the cells.
    grid_toggle = page.get_by_role("button", name="Grid")
    grid_toggle.click()
    expect(grid_toggle).to_have_attribute("aria-pressed", "false")
    expect(page.locator("a.af-cell").first).to_be_hidden()
    grid_toggle.click()
    expect(page.locator("a.af-cell").first).to_be_visible()

    # One more analysis, from the example gallery.
    analyse_example(page, "The White Bird")
    expect(page.get_by_role("heading", level=1)).to_contain_text("White Bird")
    example_url = page.url
    assert example_url != whole_url

    # History lists both, newest first; one click reopens the upload with its results.
    page.goto("/history/")
    items = page.locator(".af-history-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("White Bird")
    screenshots("history")
    accessible_at_both_widths(page)
    items.nth(1).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(painting.name)
    expect(page.locator("#results-heading")).to_have_text(WHOLE)
    assert sentences(page) == whole_sentences
    assert analysis_path(page) == urlsplit(whole_url).path


def image_size(page: Page) -> tuple[int, int]:
    stage = page.locator("[data-stage]")
    return int(stage.get_attribute("data-width")), int(stage.get_attribute("data-height"))


def topic_and_creator_without_a_common_work() -> tuple[Topic, Creator]:
    for creator in Creator.objects.order_by("name"):
        covered = set(Topic.objects.filter(works__creators=creator).values_list("pk", flat=True))
        for topic in Topic.objects.exclude(name=None).order_by("name"):
            if topic.pk not in covered:
                return topic, creator
    raise AssertionError("every creator of the demo corpus has a work on every topic")


def test_a_region_is_analysed_undone_and_the_ranking_switched_and_filtered(
    page, researcher, screenshots
):
    analyse_example(page, "Church Tower over Field")
    first_path = analysis_path(page)
    first_sentences = sentences(page)

    # Crop a region: typed in the number fields, then "Analyse region".
    page.get_by_role("button", name="Crop a region").click()
    expect(page.locator("#crop-panel")).to_be_visible()
    expect(page.locator(".cropper-container")).to_be_visible()
    width, height = image_size(page)
    region = [width // 4, height // 4, 3 * width // 4, 3 * height // 4]
    for name, value in zip(("Left", "Top", "Right", "Bottom"), region, strict=True):
        page.get_by_label(name, exact=True).fill(str(value))
    page.get_by_label("Bottom", exact=True).press("Tab")
    typed = [
        int(page.get_by_label(name, exact=True).input_value())
        for name in ("Left", "Top", "Right", "Bottom")
    ]
    assert typed == region
    screenshots("crop-panel", full_page=False)
    page.get_by_role("button", name="Analyse region").click()
    wait_for_results(page, "Sentences for the region")
    region_path = analysis_path(page)
    assert region_path != first_path
    expect(page.locator(".af-analysis-head")).to_contain_text(
        "region " + ", ".join(str(value) for value in region)
    )
    # The region fills the stage, and its grid subdivides it.
    stage = page.locator("[data-stage]")
    expect(stage).to_have_class(re.compile(r"\baf-stage-zoomed\b"))
    shown = stage.bounding_box()
    assert shown["width"] / shown["height"] == pytest.approx(
        (region[2] - region[0]) / (region[3] - region[1]), rel=0.02
    )
    cells = page.locator("[data-cell]")
    first_cell, last_cell = cells.first.bounding_box(), cells.last.bounding_box()
    assert first_cell["x"] >= shown["x"] - 1
    assert first_cell["y"] >= shown["y"] - 1
    assert last_cell["x"] + last_cell["width"] <= shown["x"] + shown["width"] + 1
    assert last_cell["y"] + last_cell["height"] <= shown["y"] + shown["height"] + 1
    view = [
        float(v) for v in page.locator("[data-view-box]").get_attribute("data-view-box").split(",")
    ]
    assert region[0] <= view[0] < view[2] <= region[2]
    assert region[1] <= view[1] < view[3] <= region[3]
    region_sentences = sentences(page)
    assert region_sentences != first_sentences
    screenshots("region")
    accessible_at_both_widths(page)

    # Undo leads back to the whole painting with its own results; redo to the region again.
    page.get_by_role("link", name="Undo region").click()
    wait_for_results(page)
    assert analysis_path(page) == first_path
    assert sentences(page) == first_sentences
    page.get_by_role("link", name="Redo region").click()
    wait_for_results(page, "Sentences for the region")
    assert analysis_path(page) == region_path
    assert sentences(page) == region_sentences
    page.get_by_role("link", name="Undo region").click()
    wait_for_results(page)

    # Another model: its job runs on the worker and the page shows the new ranking by itself.
    open_filters(page)
    page.get_by_label("Model", exact=True).select_option(label="CLIP")
    page.get_by_role("button", name="Apply").click()
    wait_for_results(page)
    assert query(page)["model"] == ["clip"]
    expect(page.locator(".af-results-count")).to_contain_text("CLIP")
    clip_sentences = sentences(page)
    assert clip_sentences != first_sentences

    # A topic: every card left is of a work on that topic.
    topic = Topic.objects.get(name="Maritime Imagery (Demo)")
    open_filters(page)
    page.locator(f"#an-topic-{topic.pk}").check()
    page.get_by_role("button", name="Apply").click()
    wait_for_results(page)
    assert query(page)["topics"] == [topic.pk]
    assert query(page)["model"] == ["clip"]
    cards = page.locator(".af-hit")
    assert cards.count() > 0
    for card in cards.all():
        expect(card.locator(".af-tags")).to_contain_text(topic.name)
    topic_sentences = sentences(page)
    assert topic_sentences != clip_sentences
    screenshots("filtered")

    # The state is the URL: a cell of the filtered ranking, reloaded, shows the same.
    page.get_by_role("link", name="Row 4, column 4").click()
    wait_for_results(page, "Sentences for row 4, column 4")
    cell_url = page.url
    assert {"cell", "model", "topics"} <= query(page).keys()
    heading = page.locator("#results-heading").inner_text()
    first = sentences(page)[0]
    page.reload()
    wait_for_results(page, heading)
    assert page.url == cell_url
    assert sentences(page)[0] == first
    open_filters(page)
    expect(page.locator(f"#an-topic-{topic.pk}")).to_be_checked()
    expect(page.get_by_label("Model", exact=True)).to_have_value("clip")

    # Filters that leave no work say so, and "Clear the filters" brings the ranking back.
    lonely_topic, creator = topic_and_creator_without_a_common_work()
    page.get_by_role("link", name="Whole painting").click()
    wait_for_results(page)
    open_filters(page)
    page.locator(f"#an-topic-{topic.pk}").uncheck()
    page.locator(f"#an-topic-{lonely_topic.pk}").check()
    page.locator(f"#an-creator-{creator.slug}").check()
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".af-empty")).to_contain_text("No sentence matches these filters.")
    expect(page.locator(".af-hit")).to_have_count(0)
    screenshots("no-match")
    accessible_at_both_widths(page)
    page.get_by_role("link", name="Clear the filters").click()
    wait_for_results(page)
    assert "topics" not in query(page)
    assert "creators" not in query(page)
    assert query(page)["model"] == ["clip"]
    assert sentences(page) == clip_sentences

    # Grouped by work, then 50 results instead of 25.
    page.get_by_role("link", name="Group by work").click()
    expect(page.locator(".af-group").first).to_be_visible()
    assert query(page)["group"] == ["work"]
    for group in page.locator(".af-group").all():
        titles = set(group.locator("[data-work-panel]").all_inner_texts())
        assert len(titles) == 1
        expect(group.locator(".af-group-title")).to_contain_text(titles.pop())
    assert sorted(sentences(page)) == sorted(clip_sentences)
    page.get_by_role("link", name="Show 50 results").click()
    expect(page.locator(".af-hit")).to_have_count(50)
    assert query(page)["k"] == ["50"]
    assert query(page)["group"] == ["work"]
    page.get_by_role("link", name="Grouped by work").click()
    expect(page.locator(".af-group")).to_have_count(0)
    assert sentences(page)[:25] == clip_sentences


def opacity(page: Page) -> float:
    return float(
        page.locator("[data-heatmap-layer]").evaluate("(layer) => getComputedStyle(layer).opacity")
    )


def test_heatmaps_citations_context_the_work_and_text_search(
    page, researcher, live_server, screenshots
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    analyse_example(page, "The White Bird")
    analysis_id = analysis_path(page).split("/")[2]
    cards = page.locator(".af-hit")
    first_card, third_card = cards.nth(0), cards.nth(2)
    first_text = first_card.locator(".af-sentence").inner_text()
    first_id = first_card.get_attribute("id").removeprefix("hit-")

    # A heatmap of one sentence, over the painting, with a caption, a legend and an opacity.
    layer = page.locator("[data-heatmap-layer]")
    first_card.get_by_role("button", name="Show heatmap").click()
    caption = page.locator("[data-heatmap-caption]")
    expect(caption).to_contain_text("Heatmap for", timeout=JOB_MS)
    expect(caption).to_contain_text(first_text)
    expect(layer).to_be_visible()
    expect(layer).to_have_attribute("src", re.compile(rf"/heatmaps/{first_id}\.png"))
    layer.evaluate("(image) => image.decode()")
    expect(page.locator(".af-legend")).to_be_visible()
    expect(first_card.get_by_role("button", name="Hide heatmap")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert query(page)["heatmap"] == [first_id]
    assert opacity(page) == pytest.approx(0.8)
    page.locator("#heatmap-opacity").fill("35")
    assert opacity(page) == pytest.approx(0.35)
    page.locator("#heatmap-opacity").focus()
    page.keyboard.press("ArrowRight")
    assert opacity(page) == pytest.approx(0.36)
    page.locator("#heatmap-opacity").fill("80")
    scroll_to_top(page)
    screenshots("heatmap")
    # Scrolled down a little: the painting's column sticks to the top of the window.
    page.evaluate("() => window.scrollTo(0, 200)")
    screenshots("heatmap-window", full_page=False)
    accessible_at_both_widths(page)

    # The URL keeps the heatmap: reloaded, the page shows it again.
    page.reload()
    expect(caption).to_contain_text("Heatmap for", timeout=JOB_MS)
    expect(layer).to_be_visible()
    layer.evaluate("(image) => image.decode()")
    page.get_by_role("button", name="Hide heatmap").first.click()
    expect(layer).to_be_hidden()
    assert "heatmap" not in query(page)

    # The top five in one go: the first is shown, the others are ready at a click.
    page.get_by_role("button", name="Heatmaps for the top 5").click()
    expect(caption).to_contain_text(f"Heatmap for “{first_text}”", timeout=JOB_MS)
    top_ids = [card.get_attribute("id").removeprefix("hit-") for card in cards.all()[:5]]
    computed = Heatmap.objects.filter(analysis_id=analysis_id, sentence_id__in=top_ids)
    deadline = time.monotonic() + JOB_MS / 1000
    while computed.count() < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert computed.count() == 5
    third_card.get_by_role("button", name="Show heatmap").click()
    expect(caption).to_contain_text(third_card.locator(".af-sentence").inner_text())
    expect(layer).to_have_attribute("src", re.compile(rf"/heatmaps/{top_ids[2]}\.png"))
    layer.evaluate("(image) => image.decode()")
    page.get_by_role("button", name="Hide heatmap", exact=True).last.click()

    # "Where is …?": any words, not only a result's sentence, get their map; the URL keeps it.
    page.get_by_label("Where is …?").fill("a white bird")
    page.get_by_role("button", name="Show where").click()
    expect(caption).to_contain_text("Where is “a white bird”", timeout=JOB_MS)
    digest = services.text_digest("a white bird")
    expect(layer).to_have_attribute("src", re.compile(rf"/where/{digest}\.png\?max_side="))
    layer.evaluate("(image) => image.decode()")
    assert query(page)["where"] == ["a white bird"]
    assert "heatmap" not in query(page)
    assert Heatmap.objects.get(analysis_id=analysis_id, text_digest=digest).text == "a white bird"
    scroll_to_top(page)
    screenshots("where-is", full_page=False)
    page.reload()
    expect(caption).to_contain_text("Where is “a white bird”", timeout=JOB_MS)
    expect(page.get_by_label("Where is …?")).to_have_value("a white bird")
    layer.evaluate("(image) => image.decode()")
    page.locator("[data-heatmap-controls]").get_by_role("button", name="Hide heatmap").click()
    expect(layer).to_be_hidden()
    assert "where" not in query(page)

    # Copy BibTeX: the clipboard holds the entry and the live region says so.
    work_href = first_card.locator("[data-work-panel]").get_attribute("href")
    work = Work.objects.get(pk=work_href.strip("/").split("/")[-1])
    first_card.get_by_role("button", name="Copy BibTeX").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == work.bibtex

    # Context: the paragraph around the sentence, the sentence marked.
    context_button = first_card.get_by_role("button", name="Context")
    context_button.click()
    expect(context_button).to_have_attribute("aria-expanded", "true")
    expect(first_card.locator(".af-context mark")).to_have_text(first_text)
    expect(first_card.locator(".af-context")).to_be_visible()
    context_button.click()
    expect(first_card.locator(".af-context")).to_be_hidden()

    # The work's title opens it in a dialog; Escape closes it and gives the focus back.
    link = first_card.get_by_role("link", name=work.display_title, exact=True)
    link.click()
    dialog = page.get_by_role("dialog", name=work.display_title)
    expect(dialog).to_be_visible()
    expect(dialog.locator(".af-bibtex")).to_have_text(work.bibtex)
    assert page.evaluate("() => Boolean(document.activeElement.closest('dialog'))")
    screenshots("work-dialog", full_page=False)
    accessible_at_both_widths(page)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(link).to_be_focused()

    # The work's own page: DOI, BibTeX and the figures.
    page.goto(link.get_attribute("href"))
    expect(page.get_by_role("heading", level=1)).to_have_text(work.display_title)
    expect(page.get_by_role("link", name=re.compile(r"^DOI 10\.5555"))).to_have_attribute(
        "href", work.doi_url
    )
    expect(page.locator(".af-bibtex")).to_have_text(work.bibtex)
    figures = page.locator(".af-figures img")
    assert figures.count() == work.images.count() > 0
    page.get_by_role("button", name="Copy BibTeX").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    screenshots("work-page")
    accessible_at_both_widths(page)

    # Text search: the worker embeds the words, the closest sentences come back as cards.
    page.goto("/search/?q=a+white+horse")
    expect(page.locator("#results-heading")).to_have_text(re.compile(r"^\d+ sentences?$"))
    expect(page.locator(".af-hit").first).to_be_visible()
    assert any("horse" in text for text in sentences(page)[:5])
    screenshots("search")
    accessible_at_both_widths(page)


def test_a_large_upload_shows_its_place_until_the_worker_has_prepared_it(
    page, settings, media, redis_connection, logged_in, screenshots, tmp_path
):
    """A large upload whose copies the worker makes: until they exist the page shows the
    painting's place, in its shape, and asks for no image that is not there (a 404 would fail
    the page); the history shows a tile in place of its thumbnail. The worker's part is in
    `tests/analysis/test_upload_preparation.py`."""
    settings.MODEL_SETTINGS = DemoModels.settings
    settings.ANALYSIS_REQUEST_DECODE_PIXELS = 10_000  # a demo scene counts as large here
    call_command("load_demo")
    logged_in(get_user_model().objects.create_user("ada", "ada@example.org", PASSWORD))
    painting = wide_demo_scene(tmp_path)

    page.goto("/workspace/")
    page.get_by_label("Choose a file").set_input_files(painting)
    page.get_by_role("button", name="Analyse", exact=True).click()
    expect(page).to_have_url(re.compile(r"/analyses/[0-9a-f-]+/"))
    pending = page.locator(".af-stage-pending")
    expect(pending).to_contain_text("is being prepared")
    expect(page.locator(".af-stage-image")).to_have_count(0)
    expect(page.get_by_role("button", name="Crop a region")).to_have_count(0)
    box = pending.bounding_box()
    with Image.open(painting) as image:
        width, height = image.size
    assert box["width"] / box["height"] == pytest.approx(width / height, rel=0.02)
    screenshots("being-prepared")
    accessible_at_both_widths(page)
    page.goto("/history/")
    expect(page.locator(".af-history-pending")).to_have_count(1)
