"""The demo corpus: public dataset layout, required keys and the promised counts."""

import json
import re

from apps.demo.corpus import build_works, write_corpus
from apps.demo.grammar import kinds_in

WORK_KEYS = {
    "Artist",
    "Link",
    "Number of Sentences",
    "DOI",
    "ImageIDs",
    "TopicIDs",
    "Relevance",
    "Author_Name",
    "Work_Title",
    "Year",
    "BibTeX",
}


def test_layout_parses(tmp_path):
    counts = write_corpus(tmp_path, limit=3)
    info = tmp_path / "json_info"
    works = json.loads((info / "works.json").read_text())
    creators = json.loads((info / "creators.json").read_text())
    topics = json.loads((info / "topics.json").read_text())
    names = json.loads((info / "topic_names.json").read_text())
    assert counts["works"] == len(works) == 3
    for work_id, meta in works.items():
        assert re.fullmatch(r"W9\d{9}", work_id)
        assert set(meta) == WORK_KEYS
        assert meta["Work_Title"].startswith("[Demo]")
        assert "[Demo]" in meta["BibTeX"]
        assert meta["DOI"].startswith("https://doi.org/10.5555/")
        assert work_id in creators[meta["Artist"]]
        for topic in meta["TopicIDs"]:
            assert re.fullmatch(r"T1\d{4}", topic)
            assert work_id in topics[topic]
            assert topic in names
        markdown = (tmp_path / "marker_output" / work_id / f"{work_id}.md").read_text()
        assert markdown.startswith("# [Demo]")
        figures = re.findall(r"!\[\]\(([^)]+)\)", markdown)
        assert figures
        assert all((tmp_path / "marker_output" / work_id / f).is_file() for f in figures)
    truth = json.loads((tmp_path / "demo_truth.json").read_text())
    first = next(iter(works))
    assert len(truth[first]["sentences"]) == works[first]["Number of Sentences"]


def test_counts_and_share_of_distractors():
    works = build_works(0)
    sentences = [s for w in works for s in w.sentences]
    assert len(works) == 40
    assert len({w.painter for w in works}) == 8
    assert 3000 <= len(sentences) <= 6000
    non_visual = sum(1 for s in sentences if not kinds_in(s)) / len(sentences)
    assert 0.25 <= non_visual <= 0.4
    assert all(s.endswith(".") and s[0].isupper() for s in sentences)


def test_sentences_survive_a_naive_splitter():
    """Each work's paragraphs split on '. ' give back exactly its sentences."""
    for work in build_works(0)[:5]:
        body = [line for line in work.markdown.splitlines() if line.endswith(".")]
        split = [p for line in body for p in re.split(r"(?<=\.)\s+", line) if p]
        assert split == work.sentences


def test_deterministic_by_seed():
    assert [w.markdown for w in build_works(3)] == [w.markdown for w in build_works(3)]
    assert build_works(3)[0].markdown != build_works(4)[0].markdown
