"""The committed demo weights load through the engine and retrieve sensibly on held-out scenes."""

import numpy as np
import pytest

from apps.demo.corpus import demo_sentences
from apps.demo.grammar import kinds_in
from apps.demo.quality import WEIGHTS, demo_registry
from apps.demo.scenes import HELD_OUT_START, make_scene
from apps.engine import embed_image, embed_texts_multi

MAX_BYTES = 20 * 1024 * 1024

pytestmark = pytest.mark.skipif(
    not (WEIGHTS / "clip" / "model.safetensors").is_file(),
    reason="the demo weights are not committed yet (train them: manage.py train_demo_model)",
)


def test_weights_are_committed_and_small():
    files = [p for p in WEIGHTS.rglob("*") if p.is_file()]
    names = {p.relative_to(WEIGHTS).as_posix() for p in files}
    assert {
        "clip/config.json",
        "clip/model.safetensors",
        "clip/preprocessor_config.json",
        "clip/vocab.json",
        "clip/merges.txt",
        "paintingclip-lora/adapter_config.json",
        "paintingclip-lora/adapter_model.safetensors",
    } <= names
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES


@pytest.fixture(scope="module")
def index():
    registry = demo_registry()
    sentences = demo_sentences()[::3]
    vectors = embed_texts_multi(sentences, ["clip", "paintingclip"], registry=registry)
    return registry, [frozenset(kinds_in(s)) for s in sentences], vectors


@pytest.mark.parametrize("key", ["clip", "paintingclip"])
def test_retrieval_beats_chance_on_held_out_scenes(index, key):
    registry, kinds, vectors = index
    precisions, chance = [], []
    for seed in range(HELD_OUT_START + 500, HELD_OUT_START + 508):
        image, scene = make_scene(seed)
        present = scene.kinds()
        relevant = np.array([bool(k) and k <= present for k in kinds])
        top = np.argsort(-(vectors[key] @ embed_image(image, key, registry=registry)))[:10]
        precisions.append(relevant[top].mean())
        chance.append(relevant.mean())
    assert np.mean(precisions) >= 0.6
    assert np.mean(precisions) >= np.mean(chance) + 0.3
