"""The library's actions on other pages: save and pin on an analysis, notes, exports of the
pins, "Add to collection" (plain and htmx), citations, and the work page's Highwire tags —
each refused with a 404 for another researcher's things."""

from __future__ import annotations

import json

import bibtexparser
import pytest
import rispy
from django.urls import reverse

from apps.corpus.models import Work
from apps.library import selectors
from apps.library.models import Collection, CollectionEntry, PinnedSentence, SavedAnalysis
from tests.library.conftest import CELL

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(django_user_model, client):
    user = django_user_model.objects.create_user("ada")
    client.force_login(user)
    return user


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob")


def page_of(analysis) -> str:
    return reverse("analysis:page", kwargs={"pk": analysis.pk})


def test_save_with_tags_and_the_cell_then_a_second_save_is_refused(client, ada, make_analysis):
    analysis = make_analysis(ada)
    url = reverse("library-actions:save", kwargs={"pk": analysis.pk})
    form = {
        "name": "  Tower  study ",
        "notes": "the left tower",
        "tags": "Towers, sky,,",
        "cell": "1,2",
    }

    response = client.post(url, {**form, "next": page_of(analysis) + "?cell=1,2"})

    assert response.status_code == 302
    assert response["Location"] == page_of(analysis) + "?cell=1,2"
    saved = SavedAnalysis.objects.get(analysis=analysis)
    assert (saved.name, saved.notes, saved.tags, saved.cell) == (
        "Tower study",
        "the left tower",
        ["towers", "sky"],
        CELL,
    )
    again = client.post(url, form, follow=True)
    assert "in your library already" in again.content.decode()
    assert SavedAnalysis.objects.count() == 1


def test_next_never_leads_off_the_site(client, ada, make_analysis):
    analysis = make_analysis(ada)
    response = client.post(
        reverse("library-actions:save", kwargs={"pk": analysis.pk}),
        {"name": "x", "next": "https://evil.example/"},
    )
    assert response["Location"].startswith(page_of(analysis))


def test_pinning_saves_the_analysis_and_unpinning_takes_the_pin_away(
    client, ada, make_analysis, sentence_ids
):
    analysis = make_analysis(
        ada,
    )
    url = reverse("library-actions:pin", kwargs={"pk": analysis.pk})

    response = client.post(url, {"sentence": sentence_ids[6], "cell": "1,2", "action": "pin"})

    assert response.status_code == 302
    assert response["Location"].endswith(f"cell=1%2C2#hit-{sentence_ids[6]}")
    saved = SavedAnalysis.objects.get(analysis=analysis)
    assert saved.name == "painting.jpg"
    assert selectors.list_pinned_sentence_ids(saved, CELL) == {sentence_ids[6]}
    assert selectors.list_pinned_sentence_ids(saved, None) == set()
    # Not among the whole image's results: refused with the service's sentence.
    refused = client.post(url, {"sentence": sentence_ids[6], "action": "pin"}, follow=True)
    assert "is not among the results" in refused.content.decode()

    client.post(url, {"sentence": sentence_ids[6], "cell": "1,2", "action": "unpin"})
    assert not PinnedSentence.objects.exists()


def test_a_pins_note_and_the_pins_exports(client, ada, make_analysis, sentence_ids):
    analysis = make_analysis(ada)
    client.post(
        reverse("library-actions:pin", kwargs={"pk": analysis.pk}),
        {"sentence": sentence_ids[0], "action": "pin"},
    )
    pin = PinnedSentence.objects.get()
    response = client.post(
        reverse("library-actions:annotate", kwargs={"pin_id": pin.pk}),
        {"annotation": "Compare the 1890 catalogue & its plate 4.", "next": page_of(analysis)},
    )
    assert response["Location"] == f"{page_of(analysis)}#pin-{pin.pk}"
    pin.refresh_from_db()
    assert pin.annotation == "Compare the 1890 catalogue & its plate 4."

    def export(fmt: str):
        saved = SavedAnalysis.objects.get(analysis=analysis)
        url = reverse("library:saved-export", kwargs={"pk": saved.pk, "fmt": fmt})
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment; filename=")
        return response.content.decode()

    library = bibtexparser.parse_string(export("bib"))
    assert not library.failed_blocks
    assert len(library.entries) == 1
    (record,) = rispy.loads(export("ris"))
    assert "plate 4" in " ".join(record.get("notes", []))
    (item,) = json.loads(export("json"))
    assert "plate 4" in item["note"]


def test_add_to_a_new_collection_then_to_it_again_and_by_htmx(client, ada, sentence_ids):
    url = reverse("library-actions:collect")
    work_id = sentence_ids[0].split("_")[0]

    response = client.post(
        url, {"sentence": sentence_ids[0], "collection": "new", "new_name": "Paper draft"}
    )
    assert response.status_code == 302
    collection = Collection.objects.get(owner=ada)
    assert collection.name == "Paper draft"

    htmx = {"HTTP_HX_REQUEST": "true"}
    again = client.post(url, {"sentence": sentence_ids[0], "collection": collection.pk}, **htmx)
    assert "Already in “Paper draft”." in again.content.decode()
    work = client.post(url, {"work": work_id, "collection": collection.pk}, **htmx)
    body = work.content.decode()
    assert "Added to “Paper draft”." in body
    assert f'<option value="{collection.pk}" selected>Paper draft</option>' in body
    entries = CollectionEntry.objects.filter(collection=collection).order_by("position")
    assert [(e.work_id, e.sentence_id) for e in entries] == [
        (work_id, sentence_ids[0]),
        (work_id, None),
    ]
    unnamed = client.post(url, {"work": work_id, "collection": "new"}, **htmx)
    assert "Name the new collection" in unnamed.content.decode()


def test_citations_in_two_styles_and_the_work_pages_meta_tags(client, ada, imported_corpus):
    work = Work.objects.exclude(doi="").first()
    chicago = client.get(reverse("library-actions:citation", args=[work.pk, "chicago-author-date"]))
    apa = client.get(reverse("library-actions:citation", args=[work.pk, "apa"]))
    assert chicago["Content-Type"].startswith("text/plain")
    assert work.display_title.split()[0] in chicago.content.decode()
    assert apa.content != chicago.content
    assert client.get(reverse("library-actions:citation", args=[work.pk, "mla"])).status_code == (
        404
    )

    page = client.get(reverse("corpus:work", args=[work.pk])).content.decode()
    assert f'<meta name="citation_title" content="{work.display_title}">' in page
    assert '<meta name="citation_doi" content="10.' in page
    assert '<meta name="citation_author"' in page


def test_another_researchers_things_are_404(client, ada, bob, make_analysis, sentence_ids):
    theirs = make_analysis(bob)
    collection = Collection.objects.create(owner=bob, name="Bob's")
    saved = SavedAnalysis.objects.create(analysis=theirs, name="Bob's analysis")
    pin = PinnedSentence.objects.create(saved=saved, sentence_id=sentence_ids[0])
    for url, data in [
        (reverse("library-actions:save", kwargs={"pk": theirs.pk}), {"name": "mine"}),
        (
            reverse("library-actions:pin", kwargs={"pk": theirs.pk}),
            {"sentence": sentence_ids[1], "action": "pin"},
        ),
        (reverse("library-actions:annotate", kwargs={"pin_id": pin.pk}), {"annotation": "x"}),
        (reverse("library-actions:unpin", kwargs={"pin_id": pin.pk}), {}),
        (
            reverse("library-actions:collect"),
            {"sentence": sentence_ids[1], "collection": collection.pk},
        ),
    ]:
        assert client.post(url, data).status_code == 404, url
    pin.refresh_from_db()
    assert (pin.annotation, collection.entries.count()) == ("", 0)
