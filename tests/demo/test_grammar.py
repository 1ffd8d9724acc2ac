"""The sentence grammar: kinds_in recovers exactly what the generator wrote."""

import random

from apps.demo.grammar import (
    KINDS,
    NOUNS,
    distractor_sentence,
    kinds_in,
    object_sentence,
    pair_sentence,
)
from apps.demo.scenes import generate_scene


def test_every_noun_names_only_its_kind():
    for kind, nouns in NOUNS.items():
        for noun in nouns:
            assert kinds_in(f"A {noun} in the distance.") == {kind}
    assert set(NOUNS) == set(KINDS)


def test_generated_sentences_name_their_objects():
    rng = random.Random(0)
    for seed in range(200):
        facts = generate_scene(seed).facts()
        for obj in facts.objects:
            sentence = object_sentence(obj, facts, rng)
            assert kinds_in(sentence) == {obj.kind}, sentence
            assert sentence.endswith(".")
            assert obj.colour in sentence
        if len(facts.objects) >= 2:
            a, b = facts.objects[:2]
            assert kinds_in(pair_sentence(a, b, facts, rng)) == {a.kind, b.kind}


def test_distractors_name_no_object():
    rng = random.Random(1)
    for _ in range(2000):
        sentence = distractor_sentence(rng)
        assert kinds_in(sentence) == set(), sentence
        assert sentence.endswith(".")


def test_word_boundaries():
    assert kinds_in("The glow of sunset over a moonlit sea.") == set()
    assert kinds_in("Two boats and a lighthouse.") == {"boat", "lighthouse"}
