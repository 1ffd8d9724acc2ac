"""The scene generator: deterministic, truthful boxes, and a painterly look that differs."""

from dataclasses import replace

import numpy as np
import pytest

from apps.demo.grammar import KINDS
from apps.demo.scenes import (
    CORPUS_SEEDS,
    HELD_OUT_START,
    TRAIN_SEEDS,
    generate_scene,
    make_scene,
    position_word,
    render_painterly,
    render_plain,
)

SEEDS = [0, 1, 17, 999_999, 5_000_123, HELD_OUT_START + 3]


@pytest.mark.parametrize("seed", SEEDS)
def test_same_seed_same_scene_and_pixels(seed):
    image_a, scene_a = make_scene(seed)
    image_b, scene_b = make_scene(seed)
    assert scene_a == scene_b
    assert np.array_equal(np.asarray(image_a), np.asarray(image_b))
    assert np.array_equal(
        np.asarray(render_painterly(scene_a)), np.asarray(render_painterly(scene_b))
    )


def test_different_seeds_differ():
    scenes = [generate_scene(s) for s in range(20)]
    assert len({(s.width, s.height, s.objects) for s in scenes}) == 20


def test_boxes_inside_image_and_sizes_in_range():
    seen_kinds = set()
    for seed in range(300):
        scene = generate_scene(seed)
        assert 200 <= scene.width <= 640
        assert 200 <= scene.height <= 640
        assert 1 <= len(scene.objects) <= 5
        for obj in scene.objects:
            x0, y0, x1, y1 = obj.box
            assert 0 <= x0 < x1 <= scene.width
            assert 0 <= y0 < y1 <= scene.height
            seen_kinds.add(obj.kind)
    assert seen_kinds == set(KINDS)
    assert len(KINDS) >= 12


def test_image_size_matches_truth():
    image, scene = make_scene(42)
    assert image.size == (scene.width, scene.height)
    assert render_painterly(scene).size == image.size


def test_objects_are_drawn_where_the_truth_says():
    """The rendering changes pixels inside each box, compared with the empty background."""
    for seed in range(10):
        scene = generate_scene(seed)
        full = np.asarray(render_plain(scene), dtype=np.int16)
        empty = np.asarray(render_plain(replace(scene, objects=())), dtype=np.int16)
        for obj in scene.objects:
            x0, y0, x1, y1 = obj.box
            changed = np.abs(full[y0:y1, x0:x1] - empty[y0:y1, x0:x1]).sum(-1) > 30
            assert changed.mean() > 0.05, (seed, obj)


def test_painterly_differs_from_plain():
    for seed in range(5):
        plain = np.asarray(render_plain(generate_scene(seed)), dtype=np.float32)
        painted = np.asarray(render_painterly(generate_scene(seed)), dtype=np.float32)
        assert np.abs(plain - painted).mean() > 10


def test_seed_ranges_are_disjoint():
    assert TRAIN_SEEDS.stop <= CORPUS_SEEDS.start
    assert CORPUS_SEEDS.stop <= HELD_OUT_START


def test_position_words():
    assert position_word(0.1, 0.1) == "upper left"
    assert position_word(0.5, 0.5) == "centre"
    assert position_word(0.99, 0.99) == "lower right"


@pytest.mark.parametrize("aspect", [2.0, 0.5, 3.0])
def test_scenes_of_an_aspect_use_the_whole_canvas(aspect):
    scenes = [generate_scene(HELD_OUT_START + 200_000 + i, aspect) for i in range(60)]
    centres = []
    for scene in scenes:
        assert scene.width / scene.height == pytest.approx(aspect, rel=0.01)
        assert 200 <= min(scene.width, scene.height) <= 400
        for obj in scene.objects:
            x0, y0, x1, y1 = obj.box
            assert 0 <= x0 < x1 <= scene.width
            assert 0 <= y0 < y1 <= scene.height
            long, side = max(scene.width, scene.height), min(scene.width, scene.height)
            along = obj.centre()[0] if aspect > 1 else obj.centre()[1]
            centres.append(abs(along - long / 2) > side / 2)  # outside the centre square
    assert 0.25 < np.mean(centres) < 0.75
    image, scene = make_scene(HELD_OUT_START + 200_000, aspect=aspect)
    assert image.size == (scene.width, scene.height) == (scenes[0].width, scenes[0].height)
