"""The library's own pages through Django's test client: the library with its search and
filters, saved analyses, collections and their order, exports, share links and the public
pages they open; and that another researcher reaches none of it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import bibtexparser
import pytest
import rispy
from django.test import Client
from django.utils import timezone

from apps.analysis.models import Analysis
from apps.library import selectors, services
from apps.library.models import Collection, CollectionEntry, SavedAnalysis, ShareLink
from tests.library.conftest import CELL

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("researcher")


@pytest.fixture
def client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(user, make_analysis, sentence_ids) -> dict:
    """A saved analysis (one pin, a cell), a collection of a work and a sentence, and an
    active share link to each."""
    saved = services.save_analysis(
        user, make_analysis(user), name="Saint Jerome", notes="The lion", tags=["lion"], cell=CELL
    )
    services.pin_sentence(saved, sentence_id=sentence_ids[0], annotation="the halo")
    collection = services.create_collection(user, name="Horses", description="Chapter 2")
    work, _ = services.add_to_collection(collection, work_id="W101")
    sentence, _ = services.add_to_collection(collection, sentence_id=sentence_ids[0])
    collection_link, collection_token = services.create_share_link(user, collection=collection)
    saved_link, saved_token = services.create_share_link(user, saved=saved)
    return {
        "saved": saved,
        "collection": collection,
        "entries": [work, sentence],
        "collection_link": collection_link,
        "collection_token": collection_token,
        "saved_link": saved_link,
        "saved_token": saved_token,
    }


def text(response) -> str:
    return response.content.decode()


def main(page: str) -> str:
    """The page's own content, without the site's header and footer."""
    return page.split("<main", 1)[1].split("</main>", 1)[0]


# What a shared page must not link to: the owner's analyses, library, the corpus, the API.
PRIVATE_LINK = re.compile(r'href="/(analyses|works|library|api)/')


def test_the_library_lists_saved_analyses_and_collections_with_their_details(client, world):
    response = client.get("/library/")

    assert response.status_code == 200
    page = text(response)
    saved = world["saved"]
    for shown in ("Saint Jerome", "The lion", "1 pin", "CLIP", "Horses", "Chapter 2", "2 entries"):
        assert shown in page
    assert f'href="{selectors.saved_analysis_url(saved)}"' in page.replace("&amp;", "&")
    assert f"/api/v1/analyses/{saved.analysis_id}/image?size=thumbnail" in page
    assert 'href="?tag=lion"' in page
    assert '<a class="nav-link active" href="/library/" aria-current="page">Library</a>' in page


def test_the_library_searches_and_filters_with_its_state_in_the_url(
    client, user, world, make_analysis
):
    services.save_analysis(user, make_analysis(user), name="Harbour", tags=["sea"])
    other = services.save_analysis(user, make_analysis(user), name="Storm")
    Analysis.objects.filter(pk=other.analysis_id).update(model_key="paintingclip")

    def names(**query) -> set[str]:
        page = text(client.get("/library/", query))
        return set(re.findall(r'class="h5 af-saved-name"><a href="[^"]*">([^<]+)</a>', page))

    assert names() == {"Saint Jerome", "Harbour", "Storm"}
    assert names(q="halo") == {"Saint Jerome"}  # an annotation of a pin
    assert names(tag="sea") == {"Harbour"}
    assert names(model="paintingclip") == {"Storm"}
    assert names(q="nothing like it") == set()
    assert "No saved analysis matches this search." in text(client.get("/library/?q=zzz"))
    # A typed URL with an unknown tag shows everything rather than failing.
    assert names(tag="no-such-tag") == {"Saint Jerome", "Harbour", "Storm"}
    page = text(client.get("/library/", {"tag": "sea"}))
    assert '<option value="sea" selected>sea</option>' in page


def test_the_library_is_paginated_keeping_the_search(client, user, make_analysis):
    for number in range(14):
        services.save_analysis(user, make_analysis(user), name=f"Item {number}", tags=["all"])

    first = text(client.get("/library/?tag=all"))
    second = text(client.get("/library/?tag=all&page=2"))

    assert first.count('data-testid="saved-item"') == 12
    assert second.count('data-testid="saved-item"') == 2
    assert 'href="?tag=all&amp;page=2"' in first


def test_empty_states_say_what_to_do(client):
    page = text(client.get("/library/"))

    assert "Save an analysis from its page" in page
    assert "No collections yet." in page


def test_a_new_collection_opens_its_page_and_a_bad_name_is_shown_on_the_form(client, user):
    response = client.post("/library/collections/", {"name": " Horses ", "description": "x"})

    collection = Collection.objects.get(owner=user)
    assert response["Location"] == f"/library/collections/{collection.pk}/"
    assert collection.name == "Horses"
    refused = client.post("/library/collections/", {"name": "   "})
    assert refused.status_code == 400
    assert "af-field-error" in text(refused)


def test_a_saved_analysis_is_edited_and_unsaved(client, world):
    saved = world["saved"]
    url = f"/library/saved/{saved.pk}/"
    assert "The lion" in text(client.get(url))

    response = client.post(url, {"name": "Jerome", "notes": "New notes", "tags": "Lion, desert"})
    assert response["Location"] == url
    saved.refresh_from_db()
    assert (saved.name, saved.notes, saved.tags) == ("Jerome", "New notes", ["lion", "desert"])
    many = ", ".join(f"t{number}" for number in range(25))
    refused = client.post(url, {"name": "Jerome", "tags": many})
    assert refused.status_code == 400
    assert "at most 20 tags" in text(refused)

    response = client.post(f"/library/saved/{saved.pk}/unsave")
    assert response["Location"] == "/library/"
    assert not SavedAnalysis.objects.filter(pk=saved.pk).exists()
    assert Analysis.objects.filter(pk=saved.analysis_id).exists()
    assert "stays in your history" in text(client.get("/library/"))


def _order(collection) -> list[int]:
    return [entry.pk for entry in selectors.list_entries(collection)]


def test_entries_move_up_and_down_and_the_focus_returns_to_the_button(client, world):
    collection, (work, sentence) = world["collection"], world["entries"]
    base = f"/library/collections/{collection.pk}/"

    response = client.post(f"{base}entries/{work.pk}/move", {"direction": "down"})
    assert response["Location"] == f"{base}?moved={work.pk}&dir=down"
    assert _order(collection) == [sentence.pk, work.pk]
    # The moved entry is last now: its "Move down" is disabled, so "Move up" takes the focus.
    page = text(client.get(response["Location"]))
    assert page.count("autofocus") == 1
    assert re.search(r'value="up" autofocus>Move up', page)

    client.post(f"{base}entries/{work.pk}/move", {"direction": "up"})
    assert _order(collection) == [work.pk, sentence.pk]
    page = text(client.get(f"{base}?moved={work.pk}&dir=up"))  # first again: "Move down"
    assert re.search(r'value="down" autofocus>Move down', page)
    # Past the top: the service refuses, and the page says why.
    client.post(f"{base}entries/{work.pk}/move", {"direction": "up"})
    assert _order(collection) == [work.pk, sentence.pk]


def test_a_collection_shows_its_entries_and_is_renamed_emptied_and_deleted(client, world):
    collection, (work, sentence) = world["collection"], world["entries"]
    base = f"/library/collections/{collection.pk}/"
    page = text(client.get(base))
    assert sentence.sentence.text in page
    assert work.work.display_title in page
    assert "Chapter 2" in page

    assert client.post(base, {"name": "Mares", "description": ""})["Location"] == base
    collection.refresh_from_db()
    assert (collection.name, collection.description) == ("Mares", "")
    assert client.post(base, {"name": ""}).status_code == 400

    client.post(f"{base}entries/{work.pk}/remove")
    assert _order(collection) == [sentence.pk]

    assert client.post(f"{base}delete")["Location"] == "/library/"
    assert not Collection.objects.filter(pk=collection.pk).exists()


def test_collection_and_pin_exports_download_as_attachments_that_parse(client, world):
    collection, saved = world["collection"], world["saved"]
    base = f"/library/collections/{collection.pk}/export"

    bib = client.get(f"{base}.bib")
    assert bib["Content-Type"] == "application/x-bibtex; charset=utf-8"
    assert bib["Content-Disposition"] == 'attachment; filename="horses.bib"'
    assert len(bibtexparser.parse_string(text(bib)).entries) == 2
    ris = client.get(f"{base}.ris")
    assert ris["Content-Disposition"] == 'attachment; filename="horses.ris"'
    assert len(rispy.loads(text(ris))) == 2
    csl = client.get(f"{base}.json")
    assert csl["Content-Type"].startswith("application/vnd.citationstyles.csl+json")
    assert len(json.loads(text(csl))) == 2
    assert client.get(f"{base}.docx").status_code == 404

    pins = client.get(f"/library/saved/{saved.pk}/export.bib")
    assert pins["Content-Disposition"] == 'attachment; filename="saint-jerome.bib"'
    (entry,) = bibtexparser.parse_string(text(pins)).entries
    assert "http://testserver/analyses/" in entry["note"]
    assert client.get(f"/library/saved/{saved.pk}/export.pdf").status_code == 404


@pytest.mark.parametrize("kind", ["collection", "saved"])
def test_a_share_link_is_shown_once_then_listed_with_its_state_and_revoked(
    client, user, world, kind
):
    target = world[kind]
    base = (
        f"/library/collections/{target.pk}/"
        if kind == "collection"
        else f"/library/saved/{target.pk}/"
    )
    response = client.post(f"{base}shares", {"expires": ""})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    url = re.search(r'id="new-share-url" type="text" value="([^"]+)"', text(response)).group(1)
    token = urlsplit(url).path.split("/")[2]
    assert url == f"http://testserver/shared/{token}/"
    assert client.get(urlsplit(url).path).status_code == 200
    assert token not in text(client.get(base))  # shown this once only

    link = ShareLink.objects.get(prefix=token[:8])
    ShareLink.objects.filter(pk=world[f"{kind}_link"].pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    page = text(client.get(base))
    assert page.count('data-testid="share-row"') == 2
    assert ">Active</span>" in page
    assert ">Expired</span>" in page

    assert client.post(f"/library/shares/{link.pk}/revoke")["Location"] == base
    assert ">Revoked</span>" in text(client.get(base))
    assert Client().get(f"/shared/{token}/").status_code == 404


def test_a_share_link_takes_an_expiry_date_and_refuses_one_in_the_past(client, world):
    base = f"/library/collections/{world['collection'].pk}/"
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()

    client.post(f"{base}shares", {"expires": tomorrow})
    link = ShareLink.objects.order_by("-created_at").first()
    assert timezone.localtime(link.expires_at).date() == timezone.localdate() + timedelta(days=2)
    refused = client.post(f"{base}shares", {"expires": "2001-01-01"})
    assert refused.status_code == 400
    assert "must lie in the future" in text(refused)


def test_a_shared_collection_opens_without_a_login_and_reaches_nothing_else(world):
    anonymous = Client()
    token = world["collection_token"]

    response = anonymous.get(f"/shared/{token}/")

    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Robots-Tag"].startswith("noindex")
    page = text(response)
    assert "Horses" in page
    assert world["entries"][1].sentence.text in page
    assert not PRIVATE_LINK.search(main(page))
    assert not re.search(r"<(form|button)\b", main(page))
    export = anonymous.get(f"/shared/{token}/export.ris")
    assert export["Content-Disposition"] == 'attachment; filename="horses.ris"'
    assert export["Referrer-Policy"] == "no-referrer"
    assert len(rispy.loads(text(export))) == 2
    assert anonymous.get(f"/shared/{token}/export.txt").status_code == 404
    assert anonymous.get(f"/shared/{token}/image").status_code == 404


def test_a_shared_analysis_shows_its_image_pins_and_results_under_the_token(world, sentence_ids):
    anonymous = Client()
    token, saved = world["saved_token"], world["saved"]

    response = anonymous.get(f"/shared/{token}/")

    page = text(response)
    assert response.status_code == 200
    for shown in ("Saint Jerome", "The lion", "the halo"):  # name, notes, an annotation
        assert shown in page
    assert f'src="/shared/{token}/image"' in page
    assert str(saved.analysis_id) not in page
    assert "Sentences for row 2, column 3" in page
    assert page.count('data-testid="result"') == 3  # the ranking stored for the cell
    assert not PRIVATE_LINK.search(main(page))
    assert not re.search(r"<(form|button)\b", main(page))
    image = anonymous.get(f"/shared/{token}/image")
    assert image.status_code == 200
    assert image["Referrer-Policy"] == "no-referrer"
    assert b"".join(image.streaming_content)[:2] == b"\xff\xd8"  # a JPEG
    bib = anonymous.get(f"/shared/{token}/export.bib")
    (entry,) = bibtexparser.parse_string(text(bib)).entries
    assert "Annotation: the halo" in entry["note"]


@pytest.mark.parametrize("change", ["revoke", "expire", "unknown"])
def test_a_revoked_expired_or_unknown_token_is_a_404_page(world, change):
    token, link = world["collection_token"], world["collection_link"]
    if change == "revoke":
        services.revoke_share_link(link)
    elif change == "expire":
        ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    else:
        token = "x" * 43

    for path in ("", "image", "export.bib"):
        response = Client().get(f"/shared/{token}/{path}")
        assert response.status_code == 404
        assert response["Referrer-Policy"] == "no-referrer"
    assert "Nothing is shared at this address" in text(Client().get(f"/shared/{token}/"))


def test_library_pages_need_a_login(world):
    for url in ("/library/", f"/library/collections/{world['collection'].pk}/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_another_researcher_reaches_none_of_it(world, django_user_model):
    intruder = Client()
    intruder.force_login(django_user_model.objects.create_user("intruder"))
    collection, saved = world["collection"], world["saved"]
    entry = world["entries"][0]
    c, s = f"/library/collections/{collection.pk}", f"/library/saved/{saved.pk}"
    gets = [f"{c}/", f"{c}/export.bib", f"{s}/", f"{s}/export.bib"]
    posts = [
        (f"{c}/", {"name": "Mine now"}),
        (f"{c}/delete", {}),
        (f"{c}/shares", {}),
        (f"{c}/entries/{entry.pk}/move", {"direction": "down"}),
        (f"{c}/entries/{entry.pk}/remove", {}),
        (f"{s}/", {"name": "Mine now"}),
        (f"{s}/unsave", {}),
        (f"{s}/shares", {}),
        (f"/library/shares/{world['collection_link'].pk}/revoke", {}),
        (f"/library/shares/{world['saved_link'].pk}/revoke", {}),
    ]

    for url in gets:
        assert intruder.get(url).status_code == 404, url
    for url, data in posts:
        assert intruder.post(url, data).status_code == 404, url
    page = text(intruder.get("/library/"))
    assert "Saint Jerome" not in page
    assert "Horses" not in page
    collection.refresh_from_db()
    assert collection.name == "Horses"
    assert CollectionEntry.objects.filter(collection=collection).count() == 2
    assert SavedAnalysis.objects.filter(pk=saved.pk).exists()
    assert ShareLink.objects.filter(revoked_at__isnull=False).count() == 0
    assert ShareLink.objects.count() == 2
    # The owner's entry cannot be reached through a collection of the intruder's either.
    own = services.create_collection(django_user_model.objects.get(username="intruder"), name="x")
    through_own = f"/library/collections/{own.pk}/entries/{entry.pk}/remove"
    assert intruder.post(through_own).status_code == 404


def test_the_reopen_link_is_the_analysis_page_with_its_cell(client, world):
    saved = world["saved"]
    page = text(client.get("/library/")).replace("&amp;", "&")
    href = re.search(r'class="h5 af-saved-name"><a href="([^"]+)"', page).group(1)

    url = urlsplit(href)
    assert url.path == f"/analyses/{saved.analysis_id}/"
    assert parse_qs(url.query)["cell"] == [f"{CELL[0]},{CELL[1]}"]
