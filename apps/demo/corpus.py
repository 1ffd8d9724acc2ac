"""The demo corpus: fictional scholarship about fictional painters, in the public dataset layout.

Written to a folder exactly like the public ArteFact corpus (``json_info/*.json`` plus
``marker_output/<W>/<W>.md`` with figure images), so the regular corpus importer reads it.
Everything is generated from a seed: the plates are rendered demo scenes (``CORPUS_SEEDS``) and
the sentences come from ``apps.demo.grammar``, so ``grammar.kinds_in`` says exactly which object
kinds each sentence describes. About a third of the sentences are non-visual distractors
(biography, provenance, technique). All titles and BibTeX entries are marked "[Demo]" and DOIs use
the 10.5555 test prefix.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from apps.demo.grammar import (
    PAINTERS,
    describe_scene,
    distractor_sentence,
    kinds_in,
    plate_title,
)
from apps.demo.scenes import CORPUS_SEEDS, Scene, generate_scene, render_painterly, render_plain

FIRST_WORK_ID = 9_000_000_001
WORKS_PER_PAINTER = 5

TOPICS: dict[str, str] = {
    "T19001": "Landscape Painting and Atmosphere (Demo)",
    "T19002": "Maritime Imagery (Demo)",
    "T19003": "Rural Life and Architecture in Painting (Demo)",
    "T19004": "Painting Technique and Materials (Demo)",
    "T19005": "Provenance and Collecting (Demo)",
    "T19006": "Artists' Lives and Letters (Demo)",
    "T19007": "Skies, Light and Weather in Art (Demo)",
    "T19008": "Figures and Animals in Landscape (Demo)",
}

_SCHOLARS = (
    "Marta Quennell",
    "Oskar Lindqvist",
    "Helena Brisco",
    "Tomas Ferrand",
    "Yara Okonkwo-Hale",
    "Benedikt Sauer",
    "Lucia Montesor",
    "Ruth Ashgrove",
    "Kenji Arimura",
    "Agnes Vellacott",
)
_TITLES = (
    "[Demo] Light and Weather in the Landscapes of {painter}",
    "[Demo] Reading the Plates: Placement and Colour in {painter}",
    "[Demo] {painter} and the Provincial Academy",
    "[Demo] A Catalogue of Late Canvases by {painter}",
    "[Demo] Horizon and Distance in the Work of {painter}",
)
_JOURNAL = "Demo Journal of Procedural Art History"
# Half of the painters paint in the painterly manner, so the corpus shows both renderings.
_PAINTERLY = frozenset(PAINTERS[1::2])


@dataclass
class Work:
    """One generated scholarly work: metadata, Markdown body, its sentences and plates."""

    work_id: str
    painter: str
    author: str
    title: str
    year: int
    topics: list[str]
    relevance: float
    markdown: str = ""
    sentences: list[str] = field(default_factory=list)
    plates: list[tuple[str, Scene, bool]] = field(default_factory=list)


def painter_slug(painter: str) -> str:
    return painter.lower().replace(" ", "_")


def build_works(seed: int = 0) -> list[Work]:
    """All works of the demo corpus, with Markdown and sentences, deterministic by seed."""
    rng = random.Random(seed)
    works = []
    topic_ids = list(TOPICS)
    for p, painter in enumerate(PAINTERS):
        for k in range(WORKS_PER_PAINTER):
            n = p * WORKS_PER_PAINTER + k
            work = Work(
                work_id=f"W{FIRST_WORK_ID + n}",
                painter=painter,
                author=rng.choice(_SCHOLARS),
                title=_TITLES[k].format(painter=painter),
                year=rng.randint(1965, 2023),
                topics=sorted(rng.sample(topic_ids, rng.randint(2, 4))),
                relevance=round(rng.uniform(1.0, 4.0), 4),
            )
            _write_body(work, seed, n, rng)
            works.append(work)
    return works


def _write_body(work: Work, seed: int, n: int, rng: random.Random) -> None:
    """Compose the Markdown: abstract, introduction, one section per plate, technique, notes."""
    lines = [f"# {work.title}", "", f"{work.author}, Demo Institute of Art History", ""]
    say = work.sentences.append

    def paragraph(sentences: list[str]) -> None:
        for s in sentences:
            say(s)
        lines.extend([" ".join(sentences), ""])

    def distractors(count: int) -> list[str]:
        return [distractor_sentence(rng, work.painter) for _ in range(count)]

    lines.append("## Abstract")
    lines.append("")
    paragraph(distractors(2))
    lines.extend(["## Introduction", ""])
    paragraph(distractors(rng.randint(3, 5)))
    painterly = work.painter in _PAINTERLY
    for plate in range(1, rng.randint(3, 5) + 1):
        scene = generate_scene(CORPUS_SEEDS.start + seed * 10_000 + n * 10 + plate)
        if not scene.objects:
            continue
        facts = scene.facts()
        name = f"{work.work_id}_fig{plate}.jpeg"
        work.plates.append((name, scene, painterly))
        title = plate_title(facts.objects[0], facts, rng)
        lines.extend([f"## Plate {plate}: {title}", "", f"![]({name})", ""])
        paragraph([f"{work.painter}, {title}, oil on canvas, {rng.randint(1820, 1890)}."])
        visual = describe_scene(facts, rng, per_object=4)
        while visual:
            k = rng.randint(3, 5)
            take, visual = visual[:k], visual[k:]
            if rng.random() < 0.4:
                take.insert(rng.randrange(len(take) + 1), *distractors(1))
            paragraph(take)
    lines.extend(["## Technique and Provenance", ""])
    n_visual = sum(1 for s in work.sentences if kinds_in(s))
    remaining = max(3, n_visual // 2 - (len(work.sentences) - n_visual))
    while remaining > 0:
        take = min(remaining, rng.randint(3, 5))
        paragraph(distractors(take))
        remaining -= take
    work.markdown = "\n".join(lines)


def demo_sentences(seed: int = 0) -> list[str]:
    """Every sentence of the demo corpus in document order (what the evaluation searches)."""
    return [s for work in build_works(seed) for s in work.sentences]


def write_corpus(out_dir: Path | str, seed: int = 0, limit: int | None = None) -> dict[str, int]:
    """Write the corpus folder (json_info, marker_output, demo_truth.json); returns counts.

    ``limit`` keeps only the first works (for quick tests); the default writes all of them.
    """
    out = Path(out_dir)
    info = out / "json_info"
    info.mkdir(parents=True, exist_ok=True)
    works = build_works(seed)[:limit]
    meta: dict[str, dict] = {}
    creators: dict[str, list[str]] = {}
    topics: dict[str, list[str]] = {}
    truth: dict[str, dict] = {}
    for work in works:
        meta[work.work_id] = _work_metadata(work)
        creators.setdefault(painter_slug(work.painter), []).append(work.work_id)
        for topic in work.topics:
            topics.setdefault(topic, []).append(work.work_id)
        folder = out / "marker_output" / work.work_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{work.work_id}.md").write_text(work.markdown + "\n", encoding="utf-8")
        for name, scene, painterly in work.plates:
            image: Image.Image = render_painterly(scene) if painterly else render_plain(scene)
            image.save(folder / name, quality=88)
        truth[work.work_id] = {
            "sentences": [{"text": s, "kinds": sorted(kinds_in(s))} for s in work.sentences],
            "plates": {name: scene.to_json() for name, scene, _ in work.plates},
        }
    _dump(info / "works.json", meta)
    _dump(info / "creators.json", creators)
    _dump(info / "topics.json", topics)
    _dump(info / "topic_names.json", {t: TOPICS[t] for t in sorted(topics)})
    _dump(out / "demo_truth.json", truth)
    sentences = sum(len(w.sentences) for w in works)
    visual = sum(1 for w in works for s in w.sentences if kinds_in(s))
    return {
        "works": len(works),
        "creators": len(creators),
        "sentences": sentences,
        "visual": visual,
        "images": sum(len(w.plates) for w in works),
    }


def _work_metadata(work: Work) -> dict:
    n = int(work.work_id[1:]) - FIRST_WORK_ID + 1
    doi = f"10.5555/artefact-demo.{n:03d}"
    bibtex = (
        f"@article{{{work.work_id},\n"
        f'  author = "{work.author}",\n'
        f'  title = "{{{work.title}}}",\n'
        f'  year = "{work.year}",\n'
        f'  journal = "{{{_JOURNAL}}}",\n'
        f'  doi = "{{{doi}}}",\n'
        f'  url = "{{https://doi.org/{doi}}}",\n'
        f'  note = "{{Demo data generated by ArteFact; not a real publication}}",\n'
        "}"
    )
    return {
        "Artist": painter_slug(work.painter),
        "Link": f"https://example.org/artefact-demo/{work.work_id}.pdf",
        "Number of Sentences": len(work.sentences),
        "DOI": f"https://doi.org/{doi}",
        "ImageIDs": [],
        "TopicIDs": work.topics,
        "Relevance": work.relevance,
        "Author_Name": work.author,
        "Work_Title": work.title,
        "Year": str(work.year),
        "BibTeX": bibtex,
    }


def _dump(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the ArteFact demo corpus folder.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(write_corpus(args.out, args.seed)))


if __name__ == "__main__":
    main()
