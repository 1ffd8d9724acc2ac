"""The library API: each endpoint for its owner, another researcher's ids answer 404 on every
endpoint, and anonymous requests 401."""

from __future__ import annotations

import bibtexparser
import pytest
import rispy
from rest_framework.test import APIClient

from apps.library import services
from apps.library.models import ShareLink
from tests.library.conftest import CELL

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(api, make_analysis, sentence_ids) -> dict:
    """The researcher's saved analysis (one pin), collection (a work and a sentence) and
    share link, by id."""
    saved = services.save_analysis(api.user, make_analysis(api.user), name="Jerome", tags=["lion"])
    pin, _ = services.pin_sentence(saved, sentence_id=sentence_ids[0])
    collection = services.create_collection(api.user, name="Horses")
    entry, _ = services.add_to_collection(collection, work_id="W101")
    services.add_to_collection(collection, sentence_id=sentence_ids[0])
    link, _ = services.create_share_link(api.user, collection=collection)
    return {"saved": saved.pk, "pin": pin.pk, "collection": collection.pk, "entry": entry.pk,
            "link": link.pk}  # fmt: skip


def endpoints(ids: dict) -> list[tuple[str, str, dict | None]]:
    saved, collection = (
        f"/api/v1/library/saved/{ids['saved']}",
        (f"/api/v1/library/collections/{ids['collection']}"),
    )
    return [
        ("get", saved, None),
        ("patch", saved, {"name": "x"}),
        ("delete", saved, None),
        ("get", f"{saved}/pins", None),
        ("post", f"{saved}/pins", {"sentence_id": "W100_s0001"}),
        ("patch", f"{saved}/pins/{ids['pin']}", {"annotation": "x"}),
        ("delete", f"{saved}/pins/{ids['pin']}", None),
        ("get", f"{saved}/export.bib", None),
        ("get", collection, None),
        ("patch", collection, {"name": "x"}),
        ("delete", collection, None),
        ("post", f"{collection}/entries", {"work_id": "W102"}),
        ("patch", f"{collection}/entries/{ids['entry']}", {"position": 1}),
        ("delete", f"{collection}/entries/{ids['entry']}", None),
        ("get", f"{collection}/export.ris", None),
        ("post", "/api/v1/library/shares", {"collection": str(ids["collection"])}),
        ("post", "/api/v1/library/shares", {"saved_analysis": str(ids["saved"])}),
        ("delete", f"/api/v1/library/shares/{ids['link']}", None),
    ]


def test_another_researchers_ids_answer_404_everywhere_and_change_nothing(library, intruder, api):
    for method, path, body in endpoints(library):
        response = getattr(intruder, method)(path, body, format="json")
        assert response.status_code == 404, (method, path, response.content)
        assert set(response.json()) == {"error", "detail"}
    for listing in ("saved", "collections", "shares"):
        assert intruder.get(f"/api/v1/library/{listing}").json()["count"] == 0
    assert api.get(f"/api/v1/library/saved/{library['saved']}").json()["name"] == "Jerome"
    assert ShareLink.objects.get(pk=library["link"]).revoked_at is None
    staff = intruder.user
    staff.is_staff = True
    staff.save()
    assert intruder.get(f"/api/v1/library/collections/{library['collection']}").status_code == 404


def test_anonymous_requests_answer_401(library):
    anonymous = APIClient()
    paths = [(m, p, b) for m, p, b in endpoints(library)]
    paths += [("get", "/api/v1/library/saved", None), ("get", "/api/v1/works/W100/citation", None)]
    for method, path, body in paths:
        response = getattr(anonymous, method)(path, body, format="json")
        assert response.status_code == 401, (method, path)
        assert response.json()["error"] == "not_authenticated"


def test_save_list_search_update_and_unsave(api, make_analysis):
    analysis = make_analysis(api.user)
    body = {"analysis": str(analysis.pk), "name": "Lion", "tags": ["Desert"], "cell": list(CELL)}
    created = api.post("/api/v1/library/saved", body, format="json")
    assert created.status_code == 201, created.json()
    saved = created.json()
    assert (saved["cell"], saved["tags"], saved["pins"]) == ([1, 2], ["desert"], [])
    assert saved["page_url"].endswith(f"/analyses/{analysis.pk}/?model=clip&cell=1%2C2")
    assert api.post("/api/v1/library/saved", body, format="json").json()["error"] == "already_saved"

    assert api.get("/api/v1/library/saved?q=lio").json()["count"] == 1
    assert api.get("/api/v1/library/saved?tag=other").json()["count"] == 0
    assert api.get("/api/v1/library/saved?model=paintingclip").json()["count"] == 0
    changed = api.patch(f"/api/v1/library/saved/{saved['id']}", {"cell": None}, format="json")
    assert (changed.json()["cell"], changed.json()["name"]) == (None, "Lion")
    assert api.delete(f"/api/v1/library/saved/{saved['id']}").status_code == 204
    assert api.get(f"/api/v1/analyses/{analysis.pk}").status_code == 200


def test_pins_and_exports_of_a_saved_analysis(api, library, sentence_ids):
    saved = f"/api/v1/library/saved/{library['saved']}"
    again = api.post(f"{saved}/pins", {"sentence_id": sentence_ids[0]}, format="json")
    assert (again.status_code, again.json()["id"]) == (200, library["pin"])
    cell = api.post(
        f"{saved}/pins", {"sentence_id": sentence_ids[6], "cell": list(CELL)}, format="json"
    )
    assert (cell.status_code, cell.json()["cell"]) == (201, [1, 2])
    refused = api.post(f"{saved}/pins", {"sentence_id": sentence_ids[6]}, format="json")
    assert (refused.status_code, refused.json()["error"]) == (400, "not_in_results")
    pin = f"{saved}/pins/{library['pin']}"
    assert api.patch(pin, {"annotation": "lion"}, format="json").json()["annotation"] == "lion"
    assert [p["sentence_id"] for p in api.get(f"{saved}/pins").json()] == [
        sentence_ids[0],
        sentence_ids[6],
    ]

    bib = api.get(f"{saved}/export.bib")
    assert bib["Content-Disposition"] == 'attachment; filename="jerome.bib"'
    entries = bibtexparser.parse_string(bib.content.decode()).entries
    assert "lion" in entries[0]["note"]
    assert "http://testserver/analyses/" in entries[0]["note"]
    assert api.get(f"{saved}/export.json").json()[0]["DOI"] == "10.1/0"
    assert api.get(f"{saved}/export.pdf").json()["error"] == "bad_format"
    assert api.delete(pin).status_code == 204


def test_collections_entries_order_and_exports(api, library, sentence_ids):
    created = api.post("/api/v1/library/collections", {"name": "New"}, format="json")
    assert (created.status_code, created.json()["entries"]) == (201, [])
    collection = f"/api/v1/library/collections/{library['collection']}"
    renamed = api.patch(collection, {"name": "Steeds", "description": "Stubbs"}, format="json")
    assert (renamed.json()["name"], renamed.json()["description"]) == ("Steeds", "Stubbs")

    added = api.post(f"{collection}/entries", {"work_id": "W102"}, format="json")
    twice = api.post(f"{collection}/entries", {"work_id": "W102"}, format="json")
    assert (added.status_code, twice.status_code, twice.json()["id"]) == (
        201,
        200,
        added.json()["id"],
    )
    both = api.post(f"{collection}/entries", {"work_id": "W1", "sentence_id": "x"}, format="json")
    assert both.status_code == 400
    missing = api.post(f"{collection}/entries", {"sentence_id": "W1_s9"}, format="json")
    assert (missing.status_code, missing.json()["error"]) == (404, "unknown_sentence")

    moved = api.patch(f"{collection}/entries/{added.json()['id']}", {"position": 0}, format="json")
    order = [e["sentence_id"] or e["work"]["id"] for e in moved.json()["entries"]]
    assert order == ["W102", "W101", sentence_ids[0]]
    outside = api.patch(f"{collection}/entries/{library['entry']}", {"position": 3}, format="json")
    assert outside.json()["error"] == "bad_position"

    ris = api.get(f"{collection}/export.ris").content.decode()
    assert [r["id"] for r in rispy.loads(ris)] == [
        "anon1992painting",
        "anon1991painting",
        "anon1990painting",
    ]
    assert api.delete(f"{collection}/entries/{library['entry']}").status_code == 204
    assert api.get("/api/v1/library/collections").json()["count"] == 2
    assert api.delete(collection).status_code == 204


def test_share_links_are_created_listed_and_revoked(api, library):
    created = api.post(
        "/api/v1/library/shares", {"saved_analysis": str(library["saved"])}, format="json"
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert created.json()["prefix"] == token[:8]
    listed = api.get("/api/v1/library/shares").json()["results"]
    assert [link["active"] for link in listed] == [True, True]
    assert all("token" not in link for link in listed)

    revoked = api.delete(f"/api/v1/library/shares/{created.json()['id']}")
    assert (revoked.status_code, revoked.json()["active"]) == (200, False)
    with pytest.raises(services.NotFoundError):
        services.selectors.get_shared_item(token)
    past = {"collection": str(library["collection"]), "expires_at": "2000-01-01T00:00:00Z"}
    assert api.post("/api/v1/library/shares", past, format="json").json()["error"] == "bad_expiry"


def test_a_works_citation_in_each_style(api, library):
    chicago = api.get("/api/v1/works/W100/citation")
    assert chicago.json()["style"] == "chicago-author-date"
    # "Author 0" is read as BibTeX reads a name: given name "Author", family name "0".
    assert chicago.json()["text"] == "0, A. 1990. “On Painting 0”. https://doi.org/10.1/0."
    apa = api.get("/api/v1/works/W100/citation?style=apa").json()
    assert apa["text"] == "0, A. (1990). On Painting 0. https://doi.org/10.1/0"
    assert apa["html"] == "0, A. (1990). <i>On Painting 0</i>. https://doi.org/10.1/0"
    assert api.get("/api/v1/works/W100/citation?style=mla").json()["error"] == "bad_style"
    assert api.get("/api/v1/works/W999/citation").status_code == 404
