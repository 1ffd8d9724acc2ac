"""The Figures tab of the portal: on an analysis (whole image, cell) and on text search, each a
link of its own (`tab=figures`), and the figure panel a hit opens (`/figures/<id>/`), with a
real worker behind the analysis and the text embedding."""

from __future__ import annotations

import re

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from apps.corpus import services as corpus_services
from apps.corpus.models import WorkImage
from tests.analysis.conftest import finished, upload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FIGURE_LINK = re.compile(r'href="/figures/(\d+)/" data-work-panel')


def _figure_ids(html: str) -> list[int]:
    return [int(match) for match in FIGURE_LINK.findall(html)]


@pytest.fixture
def portal(api) -> Client:
    client = Client()
    client.force_login(api.user)
    return client


def test_the_figures_tab_of_an_analysis_ranks_plates_like_the_image_and_a_cell(
    api, portal, figures, workers
):
    figure = figures["W103"]
    with default_storage.open(figure.image.name, "rb") as stored:
        analysis_id = upload(api, stored.read(), name="plate.png", model="clip").json()["id"]
    assert workers.burst().returncode == 0
    assert finished(api, analysis_id)["status"] == "done"
    page = f"/analyses/{analysis_id}/"

    sentences = portal.get(page).content.decode()
    assert "Sentences for the whole painting" in sentences
    assert 'aria-current="page">Sentences</a>' in sentences
    tab = re.search(r'href="([^"]*tab=figures[^"]*)"', sentences)
    assert tab, "the sentences view links to its Figures tab"

    shown = portal.get(tab.group(1).replace("&amp;", "&")).content.decode()
    assert "Figures like the whole painting" in shown
    assert 'aria-current="page">Figures</a>' in shown
    assert "af-hit" not in shown  # no sentence cards on the figures tab
    ranked = _figure_ids(shown)
    expected = [
        hit["id"] for hit in api.get(f"/api/v1/analyses/{analysis_id}/figures", {"k": 25}).json()
    ]
    assert ranked == expected
    assert ranked[0] == figure.pk
    assert f'src="/api/v1/work-images/{figure.pk}?size=thumbnail"' in shown
    # Each cell link keeps the tab: a cell's figures, ranked by the cell's own vector.
    cell_link = re.search(r'href="([^"]*cell=0%2C1[^"]*)"', shown)
    assert cell_link
    assert "tab=figures" in cell_link.group(1)
    cell = portal.get(cell_link.group(1).replace("&amp;", "&")).content.decode()
    assert "Figures like row 1, column 2" in cell
    by_cell = [
        hit["id"]
        for hit in api.get(
            f"/api/v1/analyses/{analysis_id}/figures", {"cell": "0,1", "k": 25}
        ).json()
    ]
    assert _figure_ids(cell) == by_cell

    # A cell outside the grid is a message and the analysis, not an error page.
    outside = portal.get(page, {"tab": "figures", "cell": "99,0"}, follow=True)
    assert outside.status_code == 200
    assert "is outside it" in outside.content.decode()

    # An unpublished work's figures leave the tab.
    corpus_services.set_works_published(["W103"], False)
    after = _figure_ids(portal.get(page, {"tab": "figures"}).content.decode())
    assert figure.pk not in after
    assert len(after) == len(ranked) - 1


def test_the_figure_panel_shows_the_plate_its_caption_and_its_work(portal, figures):
    figure = figures["W103"]
    panel = portal.get(f"/figures/{figure.pk}/", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    html = panel.content.decode()
    assert "<html" not in html  # a fragment for the dialog
    assert "data-work-title>Figure 1 of On Painting 3</h3>" in html
    assert "Work 3 paragraph 1" in html  # the caption
    assert "The paragraph citing it" in html
    assert "Work 3 paragraph 2" in html
    assert 'href="/works/W103/" data-work-panel>Open the work</a>' in html
    assert "@misc{W103}" in html  # the BibTeX to copy
    assert "https://doi.org/10.1/3" in html

    whole = portal.get(f"/figures/{figure.pk}/").content.decode()
    assert "<html" in whole
    assert 'href="/works/W103/">Open the work</a>' in whole

    # The work panel links its figures to their panels, as thumbnails.
    work = portal.get("/works/W103/", headers={"HX-Request": "true"}).content.decode()
    assert f'href="/figures/{figure.pk}/" data-work-panel><img src="/api/v1/work-images/' in work

    assert portal.get("/figures/999999/").status_code == 404
    corpus_services.set_works_published(["W103"], False)
    assert portal.get(f"/figures/{figure.pk}/").status_code == 404


def test_the_figures_tab_of_text_search_goes_through_the_worker_and_filters(
    api, portal, figures, workers
):
    workers.start_listening()
    page = portal.get("/search/", {"q": "a red barn", "model": "paintingclip"}).content.decode()
    assert 'aria-current="page">Sentences</a>' in page
    assert "Two forms" not in page  # a template comment is not printed
    tab = re.search(r'href="(/search/\?[^"]*tab=figures[^"]*)"', page)
    assert tab, "the search results link to their Figures tab"

    shown = portal.get(tab.group(1).replace("&amp;", "&")).content.decode()
    assert "figures from the scholarship" in shown
    expected = [
        hit["id"]
        for hit in api.get(
            "/api/v1/figures/search", {"q": "a red barn", "model": "paintingclip", "k": 25}
        ).json()
    ]
    assert _figure_ids(shown) == expected
    assert len(expected) == WorkImage.objects.count()
    # The words' form and the filters' form both keep the tab for the next search.
    assert shown.count('<input type="hidden" name="tab" value="figures">') == 2

    # Filtered inside the search: only T1's works (W100, W102, W104).
    filtered = portal.get(
        "/search/", {"q": "a red barn", "model": "paintingclip", "topics": "T1", "tab": "figures"}
    ).content.decode()
    works = {WorkImage.objects.get(pk=figure_id).work_id for figure_id in _figure_ids(filtered)}
    assert works == {"W100", "W102", "W104"}
