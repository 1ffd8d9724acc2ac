"""The Markdown splitter and the streaming JSON readers (no database)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.corpus.importers import jsonstream
from apps.corpus.importers.jsonstream import JsonStreamError, iter_array, iter_object
from apps.corpus.importers.sentences import (
    align_sentences,
    clean_block,
    paragraphs_of,
    split_markdown,
)


def test_clean_block_strips_markdown_html_and_images():
    block = (
        "Some *emphasis*, **bold** and a [link](http://x.org) with a note.<sup>12</sup>"
        ' <span id="page-3-0"></span>An image ![](_page_1_Picture_2.jpeg) &amp; an\\_escape.'
    )
    assert clean_block(block) == (
        "Some emphasis, bold and a link with a note. An image & an_escape."
    )
    assert clean_block("## A heading of four words") == ""
    assert clean_block("| a | table |\n|---|---|") == ""


def test_page_break_continuations_are_joined_and_headings_are_no_paragraphs():
    markdown = (
        "# Title of the whole article\n\nThe first paragraph ends mid\n\n"
        "sentence after a page break. Another sentence is here now.\n\n"
        "A new paragraph starts here with words."
    )
    assert paragraphs_of(markdown) == [
        "The first paragraph ends mid sentence after a page break. Another sentence is here now.",
        "A new paragraph starts here with words.",
    ]


def test_split_keeps_sentences_of_more_than_three_words_with_their_paragraph():
    split = split_markdown(
        "![](fig.png)\n\nDr. Smith painted it in 1850. Too short. "
        "It hangs in the Tate today.\n\nA second paragraph of prose.\n\n![](other.jpg)"
    )
    assert split.sentences == [
        (0, "Dr. Smith painted it in 1850."),
        (0, "It hangs in the Tate today."),
        (1, "A second paragraph of prose."),
    ]
    assert split.images == ["fig.png", "other.jpg"]


def test_align_finds_given_sentences_in_order_and_marks_missing_ones():
    paragraphs = ["One two three four. Five six seven eight.", "Nine ten eleven twelve."]
    given = ["Five six seven eight.", "Not in the text at all.", "Nine  ten eleven twelve."]
    assert align_sentences(paragraphs, given) == [0, None, 1]


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Buffers of 7 characters: every value crosses a refill."""
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", 7)


def test_streamed_object_and_array_equal_json_load(tmp_path: Path, tiny_chunks):
    data = {
        f"W1_s{i:04d}": {"English Original": f"Sentence {i} ünïcode ✓", "n": i * 1.5}
        for i in range(1, 40)
    }
    path = tmp_path / "sentences.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    assert dict(iter_object(path)) == data
    ids = [f"W1_s{i:04d}" for i in range(1, 40)] + [12345]
    path = tmp_path / "ids.json"
    path.write_text(json.dumps(ids))
    assert list(iter_array(path)) == ids
    path.write_text("{}")
    assert list(iter_object(path)) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "b": tru}', "after entry 'a'"),
        ('{"a": 1 "b": 2}', "expected one of ',}'"),
        ('{"a": 1}{"b": 2}', "unexpected data after the top-level object"),
        ('["x", 1,', "Expecting value"),
        ("[1, 2]", "expected one of '{'"),
    ],
)
def test_malformed_json_names_the_file_and_last_entry(tmp_path: Path, text, message):
    path = tmp_path / "sentences.json"
    path.write_text(text)
    reader = iter_array if text.startswith("[") and "x" in text else iter_object
    with pytest.raises(JsonStreamError, match=r"sentences\.json: malformed JSON") as raised:
        list(reader(path))
    assert message in str(raised.value)
