"""Retrieval quality of the demo models on held-out scenes, through the engine's real code path.

The generator knows every object in a scene and the grammar knows which kinds every corpus
sentence describes (``grammar.kinds_in``), so each product feature can be scored exactly:

* whole image: precision@10 of the image's nearest corpus sentences; a sentence counts when it
  names at least one object kind and every kind it names is in the scene;
* region: for a square crop around one object (``geometry.crop_around``, margin 0.25), whether a
  sentence naming that object's kind is among the top 5;
* grid cell: for the cell holding an object's centre (with the centre view's 7x7 grid, objects
  whose centre falls outside the processor's centre crop are skipped), whether a sentence
  naming its kind is in the top 10; ``cell_top10_centre`` is the same for only the objects
  whose centre lies inside the centre crop, which every view has cells for (the like-for-like
  comparison of the views);
* pointing game: for each object covering at least one cell centre, the corpus sentence that
  names only its kind and ranks highest for the image is explained with Grad-ECLIP (maps of
  the centre crop for the centre view, of the whole painting otherwise, as the portal draws
  them); a hit when the centre of the map's maximal cell lies inside the object's bounding
  box. The same game is scored for the engine's baselines (the upstream ArteFact variant,
  class-token attention, random maps) as ``pointing_<method>``;
* adapter: whole-image precision@10 with ``clip`` and ``paintingclip`` on the plain and on the
  painterly rendering of the same scenes.

Search is exact cosine similarity in numpy over the embedded demo corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apps.demo.corpus import demo_sentences
from apps.demo.geometry import INPUT, cells_inside, crop_around, to_model_box
from apps.demo.grammar import kinds_in
from apps.demo.scenes import HELD_OUT_START, Scene, make_scene, render_painterly
from apps.engine import (
    ModelRegistry,
    ModelSpec,
    analyse_image,
    cell_box,
    embed_crop,
    embed_texts_multi,
    explanation_maps,
    grid_boxes,
    painting_grid,
)
from apps.engine.gradeclip import METHODS

WEIGHTS = Path(__file__).resolve().parent / "weights"
MODEL_KEYS = ("clip", "paintingclip")


def demo_registry(weights: Path = WEIGHTS, dtype: str = "fp32") -> ModelRegistry:
    """The two demo model keys on the CPU, from a weights folder (default: the shipped one);
    fp32 unless `dtype` asks for another precision, to measure what it costs in quality."""
    base = str(weights / "clip")
    specs = [
        ModelSpec("clip", base),
        ModelSpec("paintingclip", base, str(weights / "paintingclip-lora")),
    ]
    return ModelRegistry(specs, device="cpu", dtype=dtype)


@dataclass
class CorpusIndex:
    """Corpus sentences, the kinds each names, and their embeddings per model key."""

    sentences: list[str]
    kinds: list[frozenset[str]]
    vectors: dict[str, np.ndarray]

    @classmethod
    def build(
        cls, registry: ModelRegistry, corpus_seed: int = 0, keys: tuple[str, ...] = MODEL_KEYS
    ) -> CorpusIndex:
        sentences = demo_sentences(corpus_seed)
        vectors = embed_texts_multi(sentences, list(keys), registry=registry)
        return cls(sentences, [frozenset(kinds_in(s)) for s in sentences], vectors)

    def top(self, query: np.ndarray, key: str, k: int) -> np.ndarray:
        """Indices of the k most similar sentences, best first."""
        scores = self.vectors[key] @ query
        best = np.argpartition(-scores, k)[:k]
        return best[np.argsort(-scores[best])]

    def precision(self, ranked: np.ndarray, present: set[str]) -> float:
        return float(np.mean([bool(self.kinds[i]) and self.kinds[i] <= present for i in ranked]))

    def names(self, ranked: np.ndarray, kind: str) -> bool:
        return any(kind in self.kinds[i] for i in ranked)


@dataclass
class Tally:
    """Running hit counts for one metric."""

    hits: float = 0.0
    total: int = 0

    def add(self, value: float) -> None:
        self.hits += value
        self.total += 1

    def rate(self) -> float:
        return round(self.hits / self.total, 4) if self.total else float("nan")


def evaluate(
    seed_start: int = HELD_OUT_START,
    count: int = 200,
    weights: Path = WEIGHTS,
    corpus_seed: int = 0,
    pointing: bool = True,
    adapter: bool = True,
    dtype: str = "fp32",
    view: str = "keep_aspect",
) -> dict[str, float | int]:
    """All metrics over ``count`` held-out scenes starting at ``seed_start``, with the model
    in ``dtype``, whole images and their cells seen through ``view`` (`analyse_image`).

    ``pointing=False`` skips Grad-ECLIP and ``adapter=False`` the adapter comparison (both are
    then reported as NaN), for quicker looks while iterating.
    """
    if seed_start < HELD_OUT_START:
        raise ValueError(f"Evaluation seeds must be held out (>= {HELD_OUT_START}).")
    registry = demo_registry(weights, dtype)
    index = CorpusIndex.build(registry, corpus_seed, MODEL_KEYS if adapter else ("clip",))
    preprocess = registry.get("clip").preprocess
    tallies = {
        name: Tally()
        for name in (
            "whole_p10",
            "region_top5",
            "cell_top10",
            "cell_top10_centre",
            "pointing",
            *(f"pointing_{method}" for method in METHODS if method != "gradeclip"),
            "p10_plain_paintingclip",
            "p10_painterly_clip",
            "p10_painterly_paintingclip",
        )
    }
    for seed in range(seed_start, seed_start + count):
        image, scene = make_scene(seed)
        if not scene.objects:
            continue
        present = scene.kinds()
        analysis = analyse_image(image, "clip", view=view, registry=registry)
        ranked = index.top(analysis.embedding, "clip", 10)
        tallies["whole_p10"].add(index.precision(ranked, present))
        for obj in scene.objects:
            box = crop_around(obj.box, scene.width, scene.height, 0.25)
            query = embed_crop(image, box, "clip", registry=registry)
            tallies["region_top5"].add(index.names(index.top(query, "clip", 5), obj.kind))
            cell = analysis.cell_under(*obj.centre())
            if cell is not None:
                found = index.names(index.top(analysis.cells[cell], "clip", 10), obj.kind)
                tallies["cell_top10"].add(found)
                if _in_centre_crop(obj, scene):
                    tallies["cell_top10_centre"].add(found)
        if pointing:
            hits = _pointing(
                image,
                scene,
                index,
                analysis.embedding,
                registry,
                preprocess,
                keep_aspect=view != "centre",
            )
            for method, method_hits in hits.items():
                name = "pointing" if method == "gradeclip" else f"pointing_{method}"
                for hit in method_hits:
                    tallies[name].add(hit)
        if not adapter:
            continue
        painterly = render_painterly(scene)
        for key, picture, name in (
            ("paintingclip", image, "p10_plain_paintingclip"),
            ("clip", painterly, "p10_painterly_clip"),
            ("paintingclip", painterly, "p10_painterly_paintingclip"),
        ):
            query = analyse_image(picture, key, view=view, registry=registry).embedding
            tallies[name].add(index.precision(index.top(query, key, 10), present))
    result: dict[str, float | int] = {name: t.rate() for name, t in tallies.items()}
    result["p10_plain_clip"] = result["whole_p10"]
    result["n"] = tallies["whole_p10"].total
    return result


def _in_centre_crop(obj, scene: Scene) -> bool:
    """Whether the object's centre lies inside the processor's 224x224 centre crop."""
    x0, y0, x1, y1 = to_model_box(obj.box, scene.width, scene.height)
    return 0 <= (x0 + x1) / 2 < INPUT and 0 <= (y0 + y1) / 2 < INPUT


def _pointing(
    image,
    scene: Scene,
    index: CorpusIndex,
    embedding,
    registry,
    preprocess,
    keep_aspect: bool,
) -> dict[str, list[bool]]:
    """Pointing-game hits per explanation method for the objects covering at least one cell
    centre of the map's grid (the centre crop's 7x7, or with ``keep_aspect`` the whole
    painting's grid, as the portal's heat maps); every method explains the same sentences."""
    if keep_aspect:
        boxes = grid_boxes(image.size, painting_grid(image.size))
        centres = [((x0 + x1) / 2, (y0 + y1) / 2) for row in boxes for x0, y0, x1, y1 in row]
        objects = [o for o in scene.objects if any(_holds(o.box, x, y) for x, y in centres)]
    else:
        objects = [
            o for o in scene.objects if cells_inside(to_model_box(o.box, scene.width, scene.height))
        ]
    if not objects:
        return {}
    scores = index.vectors["clip"] @ embedding
    texts = []
    for obj in objects:
        own = [i for i, kinds in enumerate(index.kinds) if kinds == {obj.kind}]
        texts.append(index.sentences[max(own, key=lambda i: scores[i])])
    hits: dict[str, list[bool]] = {}
    for method in METHODS:
        maps = explanation_maps(
            image,
            texts,
            "clip",
            method=method,
            keep_aspect=keep_aspect,
            seed=scene.seed,
            registry=registry,
        )
        hits[method] = [
            _peak_inside(obj, heat, image.size, preprocess, keep_aspect)
            for obj, heat in zip(objects, maps, strict=True)
        ]
    return hits


def _peak_inside(
    obj, heat: np.ndarray, image_size: tuple[int, int], preprocess, keep_aspect: bool
) -> bool:
    """Whether the centre of the map's maximal cell lies inside the object's bounding box."""
    row, col = (int(v) for v in np.unravel_index(int(np.argmax(heat)), heat.shape))
    if keep_aspect:
        x0, y0, x1, y1 = grid_boxes(image_size, heat.shape)[row][col]
    else:
        x0, y0, x1, y1 = cell_box(image_size, row, col, heat.shape, preprocess)
    return _holds(obj.box, (x0 + x1) / 2, (y0 + y1) / 2)


def _holds(box, x: float, y: float) -> bool:
    x0, y0, x1, y1 = box
    return x0 <= x <= x1 and y0 <= y <= y1
