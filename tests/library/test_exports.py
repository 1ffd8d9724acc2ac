"""Exports parse back with the parsers of their formats, with every character intact; keys are
unique and stable; the corpus sample's BibTeX, malformed or not, becomes clean entries."""

from __future__ import annotations

import json

import bibtexparser
import pytest
import rispy
from bibtexparser.middlewares import LatexDecodingMiddleware

from apps.corpus import services as corpus_services
from apps.corpus.models import Sentence, Work
from apps.library import exports, services
from tests.library.conftest import CELL

pytestmark = pytest.mark.django_db

TITLES = {
    "W1": "Titian’s <i>Venus</i> & the 50% rule_of {thirds}",
    "W2": "Ἡ ζωγραφική τῆς Ἀναγεννήσεως",
    "W3": "中国画的笔墨",
    "W4": "Ölbilder: Dürer, Gérôme and Łódź",
}
PLAIN = {
    "W1": "Titian’s Venus & the 50% rule_of {thirds}",
    "W2": TITLES["W2"],
    "W3": TITLES["W3"],
    "W4": TITLES["W4"],
}


@pytest.fixture
def works() -> list[Work]:
    rows = [
        Work(id="W1", title=TITLES["W1"], author="Anna Müller", year="1999", doi="https://doi.org/10.1/a_b"),
        Work(id="W2", title=TITLES["W2"], author="Γιάννης Παπαδόπουλος", year="2001",
             bibtex="@article{W2, title = {broken"),
        Work(id="W3", title=TITLES["W3"], author="王 小明", year="2010", doi="10.3/c"),
        Work(id="W4", title=TITLES["W4"], author="Unknown Author", year="", link="https://x.org/4"),
    ]  # fmt: skip
    return Work.objects.bulk_create(rows)


def _collection(user, works: list[Work], sentence: Sentence | None = None):
    collection = services.create_collection(user, name="Ünïcode & co")
    for work in works:
        services.add_to_collection(collection, work_id=work.id)
    if sentence is not None:
        services.add_to_collection(collection, sentence_id=sentence.id)
    return collection


def test_bibtex_round_trips_accents_html_braces_specials_and_other_scripts(
    works, django_user_model
):
    collection = _collection(django_user_model.objects.create_user("r"), works)
    export = services.export_collection(collection, "bib")

    assert export.filename == "unicode-co.bib"
    assert export.content_type.startswith("application/x-bibtex")
    library = bibtexparser.parse_string(export.text, append_middleware=[LatexDecodingMiddleware()])
    assert library.failed_blocks == []
    by_id = {entry.key: entry for entry in library.entries}
    assert list(by_id) == ["muller1999titians", "anon2001w2", "anon2010w3", "anonndolbilder"]
    titles = [entry["title"] for entry in library.entries]
    assert titles == [PLAIN[w.id] for w in works]
    raw = bibtexparser.parse_string(export.text)
    assert raw.entries[0]["doi"] == "10.1/a_b"  # verbatim, not LaTeX-escaped
    assert "\\&" in raw.entries[0]["title"]
    assert "\\%" in raw.entries[0]["title"]
    assert "author" not in raw.entries[3]  # "Unknown Author" is no author
    assert raw.entries[3]["url"] == "https://x.org/4"


def test_keys_are_author_year_word_unique_and_independent_of_order():
    def reference(work_id: str, title: str) -> exports.Reference:
        return exports.Reference(
            work_id, "misc", title, [exports.Person("Müller", "A")], "1999", "", ""
        )

    first = [reference("W2", "The Garden"), reference("W1", "The Garden"), reference("W3", "Ἡ γῆ")]
    exports.assign_keys(first)
    second = list(reversed([reference("W2", "The Garden"), reference("W1", "The Garden"),
                            reference("W3", "Ἡ γῆ")]))  # fmt: skip
    exports.assign_keys(second)

    assert [r.key for r in first] == ["muller1999gardenb", "muller1999gardena", "muller1999w3"]
    assert {r.work_id: r.key for r in first} == {r.work_id: r.key for r in second}


def test_ris_starts_with_ty_and_parses_back(works, django_user_model, sentence_ids):
    sentence = Sentence.objects.get(pk=sentence_ids[0])
    collection = _collection(django_user_model.objects.create_user("r"), works, sentence)
    export = services.export_collection(collection, "ris")

    assert export.text.startswith("TY  - ")
    records = rispy.loads(export.text)
    assert [record["title"] for record in records] == [
        *(PLAIN[w.id] for w in works),
        "On Painting 0",
    ]
    assert records[0]["doi"] == "10.1/a_b"
    assert records[-1]["notes"] == [f"“{sentence.text}” — Sentence {sentence.id}"]


def _assert_csl(item: dict) -> None:
    """The CSL-JSON fields the exports write, with the types the schema gives them."""
    assert isinstance(item["id"], str)
    assert isinstance(item["type"], str)
    assert isinstance(item["title"], str)
    for person in item.get("author", []):
        assert set(person) in ({"family", "given"}, {"literal"}), person
        assert all(isinstance(value, str) and value for value in person.values())
    if "issued" in item:
        (parts,) = item["issued"]["date-parts"]
        assert all(isinstance(part, int) for part in parts)
    for name in ("DOI", "URL", "note", "container-title"):
        assert isinstance(item.get(name, ""), str)


def test_csl_json_of_pinned_sentences_names_the_analysis_they_came_from(
    make_analysis, django_user_model, sentence_ids
):
    user = django_user_model.objects.create_user("r")
    saved = services.save_analysis(user, make_analysis(user), name="St Jerome")
    services.pin_sentence(saved, sentence_id=sentence_ids[0], annotation="the lion")
    services.pin_sentence(saved, sentence_id=sentence_ids[5], cell=CELL)

    export = services.export_saved_analysis(saved, "json", base_url="https://artefact.example/")
    items = json.loads(export.text)

    assert export.filename == "st-jerome.json"
    assert len(items) == 1  # both sentences are of work W100: one record, two quotations
    _assert_csl(items[0])
    assert items[0]["DOI"] == "10.1/0"
    note = items[0]["note"].split("\n")
    assert "Pinned from the analysis “St Jerome” (whole image" in note[0]
    assert "Annotation: the lion" in note[0]
    assert "grid cell row 1, column 2" in note[1]
    assert (
        f"https://artefact.example/analyses/{saved.analysis_id}/?model=clip&cell=1%2C2" in note[1]
    )


def test_unknown_formats_are_refused(django_user_model):
    collection = services.create_collection(django_user_model.objects.create_user("r"), name="x")
    with pytest.raises(services.NotFoundError):
        services.export_collection(collection, "docx")


def test_the_corpus_sample_exports_as_clean_bibtex_with_every_doi(sample, django_user_model):
    corpus_services.import_corpus([sample])
    collection = services.create_collection(django_user_model.objects.create_user("r"), name="All")
    works = list(Work.objects.order_by("id"))
    for work in works:
        services.add_to_collection(collection, work_id=work.id)

    text = services.export_collection(collection, "bib").text
    library = bibtexparser.parse_string(text, append_middleware=[LatexDecodingMiddleware()])

    assert library.failed_blocks == []
    assert len(library.entries) == len(works) == 32
    keys = [entry.key for entry in library.entries]
    assert len(set(keys)) == len(keys)
    assert not any(key.startswith("W") for key in keys)
    dois = {entry["doi"] for entry in library.entries}
    assert dois == {exports.bare_doi(work.doi) for work in works}
    titles = [entry["title"] for entry in library.entries]
    assert not any("<" in title for title in titles)
    assert "“Headless Rome” and Hungry Goths: Herodotus and Titus Andronicus" in titles
    assert "null" not in text
    assert services.export_collection(collection, "bib").text == text


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (
            "apa",
            "Müller, A. (1999). Titian’s Venus & the 50% rule_of {thirds}. https://doi.org/10.1/a_b",
        ),
        ("chicago-author-date", "Müller, A. 1999. “Titian’s Venus & the 50% Rule_of {thirds}”."),
    ],
)
def test_citations_render_plain_text_and_escaped_html(works, style, expected):
    citation = services.format_citation(works[0], style)

    assert citation.text.startswith(expected)
    assert "&amp;" in citation.html
    assert "<i>" not in citation.text
    assert "&" not in citation.html.replace("&amp;", "")
    assert services.format_citation(works[0], style) == citation
