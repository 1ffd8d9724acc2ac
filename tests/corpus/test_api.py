"""The read-only corpus endpoints of the REST API: sentences, works, their images, topics,
creators."""

from __future__ import annotations

import pytest

from apps.corpus import services
from apps.corpus.models import Work, WorkImage

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(media, imported_corpus):
    """The small corpus imported, its figure images stored under a per-test MEDIA_ROOT."""
    return imported_corpus


def test_sentence_detail_gives_its_paragraph_neighbours_and_work(api, corpus):
    response = api.get("/api/v1/sentences/W101_s0005")
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "Work 1 paragraph 2 sentence 2 discusses colour."
    assert body["text"] in body["paragraph"]
    assert "paragraph 1" not in body["paragraph"]
    assert [n["id"] for n in body["before"]] == ["W101_s0003", "W101_s0004"]
    assert [n["id"] for n in body["after"]] == ["W101_s0006"]
    assert body["work"] == {
        "id": "W101",
        "title": "On Painting 1",
        "author": "Author 1",
        "year": "1991",
        "doi": "https://doi.org/10.1/1",
        "doi_url": "https://doi.org/10.1/1",
    }


def test_work_detail_gives_metadata_bibtex_doi_link_and_fetchable_images(api, corpus):
    response = api.get("/api/v1/works/W102")
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "On Painting 2"
    assert body["title_html"] == "On <i>Painting</i> 2"
    assert body["bibtex"] == "@misc{W102}"
    assert body["doi_url"] == "https://doi.org/10.1/2"
    assert body["link"] == "https://example.org/W102.pdf"
    assert body["sentence_count"] == 6
    assert [c["slug"] for c in body["creators"]] == ["carla_maker"]
    assert [t["id"] for t in body["topics"]] == ["T1"]
    assert [image["name"] for image in body["images"]] == ["fig_2.png"]
    image = api.get(body["images"][0]["url"])
    assert image.status_code == 200
    figure = corpus / "marker_output" / "W102" / "fig_2.png"
    assert b"".join(image.streaming_content) == figure.read_bytes()


def test_a_bare_doi_gets_a_resolver_link(api, corpus):
    Work.objects.filter(id="W103").update(doi="10.1/3")
    assert api.get("/api/v1/works/W103").json()["doi_url"] == "https://doi.org/10.1/3"
    Work.objects.filter(id="W103").update(doi="")
    assert api.get("/api/v1/works/W103").json()["doi_url"] == ""


def test_unknown_or_unpublished_sentences_and_works_are_json_404s(api, corpus):
    services.set_sentences_published(["W100_s0002"], False)
    services.set_works_published(["W104"], False)
    for path, what in [
        ("/api/v1/sentences/W100_s0002", "sentence 'W100_s0002'"),
        ("/api/v1/sentences/nope", "sentence 'nope'"),
        ("/api/v1/works/W104", "work 'W104'"),
        ("/api/v1/works/W999", "work 'W999'"),
    ]:
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"error": "not_found", "detail": f"There is no {what}."}
    image_id = api.get("/api/v1/works/W105").json()["images"][0]["url"].rsplit("/", 1)[1]
    services.set_works_published(["W105"], False)
    assert api.get(f"/api/v1/work-images/{image_id}").status_code == 404


def test_topics_list_named_ones_unless_all_and_creators_list_by_name(api, corpus):
    assert api.get("/api/v1/topics").json()["results"] == [
        {"id": "T2", "name": "Landscapes"},
        {"id": "T1", "name": "Portraits"},
    ]
    everything = api.get("/api/v1/topics?all=1").json()["results"]
    assert [topic["id"] for topic in everything] == ["T2", "T1", "T3"]
    creators = api.get("/api/v1/creators").json()
    assert creators["count"] == 3
    assert [c["slug"] for c in creators["results"]] == [
        "anna_artist",
        "bruno_painter",
        "carla_maker",
    ]


def test_corpus_endpoints_need_authentication(client, corpus):
    response = client.get("/api/v1/works/W100")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_a_figure_whose_file_is_gone_answers_404(api, corpus):
    image = WorkImage.objects.filter(work__published=True).first()
    image.image.storage.delete(image.image.name)

    response = api.get(f"/api/v1/work-images/{image.pk}")

    assert response.status_code == 404
    assert response.json()["error"] == "file_missing"
