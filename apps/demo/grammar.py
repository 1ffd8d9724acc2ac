"""Sentence grammar of the demo world.

One grammar writes both the demo corpus and the training captions, so the tiny CLIP learns the
same register it is later asked to retrieve. Every object noun the grammar can emit is listed in
``NOUNS``; that makes ``kinds_in`` exact for generated text instead of a guess, and the
non-visual distractor templates are checked (in tests) never to use one of these nouns.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

KINDS: tuple[str, ...] = (
    "sun",
    "moon",
    "cloud",
    "bird",
    "mountain",
    "tree",
    "house",
    "church tower",
    "windmill",
    "bridge",
    "boat",
    "figure",
    "horse",
    "lighthouse",
)

# Nouns the grammar uses for each kind; the first is the plain one.
NOUNS: dict[str, tuple[str, ...]] = {
    "sun": ("sun",),
    "moon": ("moon",),
    "cloud": ("cloud",),
    "bird": ("bird", "gull"),
    "mountain": ("mountain", "peak"),
    "tree": ("tree", "poplar"),
    "house": ("house", "cottage"),
    "church tower": ("church tower", "steeple"),
    "windmill": ("windmill", "mill"),
    "bridge": ("bridge",),
    "boat": ("boat", "sailing boat"),
    "figure": ("figure", "lone figure"),
    "horse": ("horse", "mare"),
    "lighthouse": ("lighthouse",),
}

VERBS: dict[str, tuple[str, ...]] = {
    "sun": ("burns", "hangs low", "glows"),
    "moon": ("hangs", "glimmers", "rises"),
    "cloud": ("drifts", "gathers", "floats"),
    "bird": ("flies", "wheels", "glides"),
    "mountain": ("rises", "looms", "towers"),
    "tree": ("stands", "grows", "leans"),
    "house": ("stands", "nestles", "sits"),
    "church tower": ("rises", "stands", "soars"),
    "windmill": ("stands", "turns", "rises"),
    "bridge": ("spans the scene", "crosses the ground", "stretches"),
    "boat": ("rests", "sails", "floats"),
    "figure": ("stands", "walks", "waits"),
    "horse": ("grazes", "stands", "trots"),
    "lighthouse": ("stands", "rises", "keeps watch"),
}

SKY_PHRASES: dict[str, tuple[str, ...]] = {
    "day": ("a clear blue sky", "bright daylight", "a pale midday sky"),
    "sunset": ("an orange sunset sky", "the glow of sunset", "a fiery evening sky"),
    "night": ("a dark night sky", "the deep blue of night", "a starless night"),
    "overcast": ("a grey overcast sky", "a heavy leaden sky", "a dull clouded sky"),
}

GROUND_PHRASES: dict[str, tuple[str, ...]] = {
    "field": ("a green field", "the green meadow", "open pasture"),
    "sea": ("a calm sea", "the open water", "grey-green waves"),
    "desert": ("the sandy desert", "pale dunes", "a sunbaked plain"),
    "snow": ("a snowy plain", "the winter snow", "white drifts"),
}

SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "modest"),
    "large": ("large", "great", "imposing"),
}

POSITION_WORDS: dict[str, str] = {
    "upper left": "upper left",
    "top": "upper centre",
    "upper right": "upper right",
    "left": "left",
    "centre": "centre",
    "right": "right",
    "lower left": "lower left",
    "bottom": "lower centre",
    "lower right": "lower right",
}

_OBJECT_TEMPLATES: tuple[str, ...] = (
    "In the {pos} a {size} {colour} {noun} {verb} against {sky}.",
    "In the {pos} of the canvas a {colour} {noun} {verb} above {ground}.",
    "The painter places a {size} {colour} {noun} in the {pos} of the composition.",
    "A {colour} {noun} occupies the {pos}, set against {sky}.",
    "Our eye is drawn to the {colour} {noun} in the {pos}.",
    "The {colour} {noun} in the {pos} is laid in with quick, loaded strokes.",
    "Against {sky}, a {size} {colour} {noun} {verb} in the {pos}.",
    "Here the {noun} is {colour}, a {size} accent in the {pos} of the picture.",
    "A {size} {noun}, painted {colour}, {verb} in the {pos}.",
    "The {size} {colour} {noun} anchors the {pos} of the scene.",
)

_PAIR_TEMPLATES: tuple[str, ...] = (
    "A {c1} {n1} and a {c2} {n2} share the picture space above {ground}.",
    "Beneath {sky}, a {c1} {n1} answers a {c2} {n2}.",
    "The {c1} {n1} in the {p1} is balanced by a {c2} {n2} in the {p2}.",
    "Between the {c1} {n1} and the {c2} {n2} the painter leaves a quiet interval.",
)

_TITLE_TEMPLATES: tuple[str, ...] = (
    "The {colour} {noun_cap}",
    "{noun_cap} over {ground_word}",
    "Study of a {noun}",
)

_PAINTER_FIRST = ("Anselm", "Clothilde", "Pieter", "Elinor", "Matteo", "Ingrid", "Josep", "Henrike")
_PAINTER_LAST = (
    "Varga",
    "Marren",
    "Haalbos",
    "Strathe",
    "Corvasi",
    "Solberg",
    "Almirall",
    "Daalmann",
)
PAINTERS: tuple[str, ...] = tuple(
    f"{f} {s}" for f, s in zip(_PAINTER_FIRST, _PAINTER_LAST, strict=True)
)

_TOWNS = (
    "Ostwald",
    "Kerrin",
    "Valmora",
    "Brisk",
    "Lindhaven",
    "Castelverde",
    "Olmütz",
    "Saint-Arn",
)
_TRADES = ("glazier", "notary", "miller", "bookbinder", "schoolmaster", "wine merchant")
_MUSEUMS = (
    "Museum of Demo Art",
    "Kerrin Kunsthalle",
    "Valmora Civic Collection",
    "Lindhaven Gallery",
    "Ostwald Academy",
)
_COLLECTORS = (
    "Baron Ellery",
    "the Moravec family",
    "Augusta Plene",
    "a private Swiss collector",
    "the dealer Hugo Stram",
)
_PEOPLE = (
    "the painter's sister",
    "a patron",
    "a former pupil",
    "the critic Lorne Abery",
    "a dealer",
)
_PIGMENTS = (
    "lead white",
    "smalt",
    "vermilion",
    "raw umber",
    "Prussian blue",
    "yellow ochre",
    "bone black",
)
_SUPPORTS = ("a coarse linen", "a fine-weave canvas", "an oak panel", "a reused millboard")

_DISTRACTOR_TEMPLATES: tuple[str, ...] = (
    "{painter} was born in {year} in {town}, the child of a {trade}.",
    "The canvas was acquired by the {museum} in {year2} from {collector}.",
    "In a letter of {year2} to {person}, {painter} complained of failing eyesight.",
    "X-radiography reveals a reworked ground layer beneath the present surface.",
    "The ground was prepared with {pigment} over {support}.",
    "Pigment analysis identified {pigment} and {pigment2} in the underlayers.",
    "The picture was shown in {town} in {year2}, where critics received it coolly.",
    "{painter} trained for four years in the studio of an academic master in {town}.",
    "The work passed through the hands of {collector} before entering public ownership.",
    "Conservation in {year3} removed a discoloured varnish and old retouchings.",
    "The artist rarely dated canvases, which complicates any secure chronology.",
    "Sales ledgers from {year2} record the price as modest even by provincial standards.",
    "{painter} left {town} in {year2} and never returned to the academy.",
    "The signature in the margin was added later by another hand.",
    "Contemporary reviews in {town} praised the handling but doubted the ambition.",
    "The stretcher bears the stamp of a colourman active in {town} around {year2}.",
    "Letters to {person} describe long periods of illness and debt.",
    "The dimensions were altered when the canvas was relined in {year3}.",
)


@dataclass(frozen=True)
class ObjectFacts:
    """What a sentence may say about one object: its kind, colour, size word and position."""

    kind: str
    colour: str
    size: str
    position: str


@dataclass(frozen=True)
class SceneFacts:
    """What a sentence may say about a scene: its sky, ground and objects."""

    sky: str
    ground: str
    objects: tuple[ObjectFacts, ...]


def object_sentence(obj: ObjectFacts, scene: SceneFacts, rng: random.Random) -> str:
    """One art-historical sentence about a single object, drawn from the object templates."""
    template = rng.choice(_OBJECT_TEMPLATES)
    return _capitalise(
        template.format(
            pos=POSITION_WORDS[obj.position],
            size=rng.choice(SIZE_WORDS[obj.size]),
            colour=obj.colour,
            noun=rng.choice(NOUNS[obj.kind]),
            verb=rng.choice(VERBS[obj.kind]),
            sky=rng.choice(SKY_PHRASES[scene.sky]),
            ground=rng.choice(GROUND_PHRASES[scene.ground]),
        )
    )


def pair_sentence(a: ObjectFacts, b: ObjectFacts, scene: SceneFacts, rng: random.Random) -> str:
    """One sentence that relates two objects of a scene to each other."""
    template = rng.choice(_PAIR_TEMPLATES)
    return _capitalise(
        template.format(
            c1=a.colour,
            n1=rng.choice(NOUNS[a.kind]),
            p1=POSITION_WORDS[a.position],
            c2=b.colour,
            n2=rng.choice(NOUNS[b.kind]),
            p2=POSITION_WORDS[b.position],
            sky=rng.choice(SKY_PHRASES[scene.sky]),
            ground=rng.choice(GROUND_PHRASES[scene.ground]),
        )
    )


def distractor_sentence(rng: random.Random, painter: str | None = None) -> str:
    """One non-visual sentence (biography, provenance, technique) that names no object kind."""
    pigment, pigment2 = rng.sample(_PIGMENTS, 2)
    year = rng.randint(1790, 1880)
    return rng.choice(_DISTRACTOR_TEMPLATES).format(
        painter=painter or rng.choice(PAINTERS),
        year=year,
        year2=year + rng.randint(20, 60),
        year3=rng.randint(1950, 2015),
        town=rng.choice(_TOWNS),
        trade=rng.choice(_TRADES),
        museum=rng.choice(_MUSEUMS),
        collector=rng.choice(_COLLECTORS),
        person=rng.choice(_PEOPLE),
        pigment=pigment,
        pigment2=pigment2,
        support=rng.choice(_SUPPORTS),
    )


def plate_title(obj: ObjectFacts, scene: SceneFacts, rng: random.Random) -> str:
    """A short painting title after the scene's most prominent object."""
    noun = NOUNS[obj.kind][0]
    return rng.choice(_TITLE_TEMPLATES).format(
        colour=obj.colour.capitalize(),
        noun=noun,
        noun_cap=noun.title(),
        ground_word=scene.ground.capitalize(),
    )


def vocabulary_texts() -> list[str]:
    """Every word the grammar can emit, as short texts, so a tokenizer covers all of them."""
    words: list[str] = []
    for group in (*NOUNS.values(), *VERBS.values(), *SKY_PHRASES.values()):
        words.extend(group)
    for group in (*GROUND_PHRASES.values(), *SIZE_WORDS.values()):
        words.extend(group)
    words.extend(POSITION_WORDS.values())
    words.extend(_OBJECT_TEMPLATES + _PAIR_TEMPLATES + _TITLE_TEMPLATES + _DISTRACTOR_TEMPLATES)
    words.extend(PAINTERS + _TOWNS + _TRADES + _MUSEUMS + _COLLECTORS + _PEOPLE)
    words.extend(_PIGMENTS + _SUPPORTS)
    return words


_KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(r"\b(?:" + "|".join(re.escape(n) for n in nouns) + r")s?\b", re.IGNORECASE))
    for kind, nouns in NOUNS.items()
)


def kinds_in(text: str) -> set[str]:
    """The object kinds a grammar sentence describes, read from the grammar's own noun lexicon."""
    return {kind for kind, pattern in _KIND_PATTERNS if pattern.search(text)}


def _capitalise(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


def describe_scene(scene: SceneFacts, rng: random.Random, per_object: int = 3) -> list[str]:
    """Sentences about a whole scene: several distinct ones per object, one pairing if possible."""
    sentences: list[str] = []
    for obj in scene.objects:
        own: list[str] = []
        for _ in range(per_object * 4):
            sentence = object_sentence(obj, scene, rng)
            if sentence not in own:
                own.append(sentence)
            if len(own) == per_object:
                break
        sentences += own
    if len(scene.objects) >= 2:
        a, b = rng.sample(list(scene.objects), 2)
        sentences.append(pair_sentence(a, b, scene, rng))
    rng.shuffle(sentences)
    return sentences


def caption_for(objects: Sequence[ObjectFacts], scene: SceneFacts, rng: random.Random) -> str:
    """A training caption: one or two of the given objects in the grammar's register."""
    if len(objects) >= 2 and rng.random() < 0.3:
        a, b = rng.sample(list(objects), 2)
        return pair_sentence(a, b, scene, rng)
    return object_sentence(rng.choice(list(objects)), scene, rng)
