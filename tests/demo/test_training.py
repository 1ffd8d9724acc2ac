"""Training runs end to end on a tiny config and writes folders the real loaders accept."""

import json
import random
import shutil

import numpy as np
import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

from apps.demo.data import (
    ASPECT_GRIDS,
    KIND_INDEX,
    build_aspect_bank,
    build_banks,
    normalise,
    sample_batch,
)
from apps.demo.scenes import draw_order, make_scene
from apps.demo.training import TINY, soft_contrastive, train_demo_adapter, train_demo_model
from apps.engine import Preprocess, grid_boxes, grid_cell_at, painting_grid


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    report = train_demo_model(seed=3, out_dir=out, config=TINY)
    return out, report


def test_folders_load_like_the_real_model(trained):
    out, report = trained
    model = CLIPModel.from_pretrained(out / "clip")
    processor = CLIPProcessor.from_pretrained(out / "clip")
    assert model.config.vision_config.patch_size == 32
    assert model.config.vision_config.image_size == 224
    assert processor.image_processor.size["shortest_edge"] == 224
    assert processor.image_processor.crop_size["height"] == 224
    assert model.config.text_config.eos_token_id == processor.tokenizer.eos_token_id
    assert (
        CLIPTokenizer.from_pretrained(out / "clip").get_vocab() == processor.tokenizer.get_vocab()
    )
    assert report["parameters"] == sum(p.numel() for p in model.parameters())
    assert json.loads((out / "training_report.json").read_text())["seed"] == 3


def test_adapter_loads_with_peft_and_changes_only_projections(trained):
    out, _ = trained
    base = CLIPModel.from_pretrained(out / "clip")
    inputs = CLIPProcessor.from_pretrained(out / "clip")(
        text=["a red boat"], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        before = base.get_text_features(**inputs).pooler_output.clone()
        hidden = base.text_model(**inputs).pooler_output.clone()
    adapted = PeftModel.from_pretrained(base, out / "paintingclip-lora")
    config = json.loads((out / "paintingclip-lora" / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["text_projection", "visual_projection"]
    assert (config["r"], config["lora_alpha"]) == (16, 32)
    with torch.no_grad():
        after = adapted.get_text_features(**inputs).pooler_output
        hidden_after = adapted.text_model(**inputs).pooler_output
    assert torch.equal(hidden, hidden_after)
    assert not torch.allclose(before, after)


def test_the_adapter_alone_retrains_to_what_the_full_run_wrote(trained, tmp_path):
    out, report = trained
    shutil.copytree(out / "clip", tmp_path / "clip")

    again = train_demo_adapter(seed=3, out_dir=tmp_path, config=TINY)

    assert again["adapter_seeds"] == report["adapter_seeds"]
    first = load_file(out / "paintingclip-lora" / "adapter_model.safetensors")
    second = load_file(tmp_path / "paintingclip-lora" / "adapter_model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_soft_contrastive_prefers_matching_pairs():
    torch.manual_seed(0)
    txt = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    weights = torch.eye(6)
    scale = torch.tensor(10.0)
    aligned = soft_contrastive(txt, txt, weights, scale)
    shuffled = soft_contrastive(txt[torch.tensor([1, 2, 3, 4, 5, 0])], txt, weights, scale)
    assert aligned < shuffled


def test_batches_are_reproducible_and_match_their_captions():
    whole, crops = build_banks(range(6), False, CLIPImageProcessor(), random.Random(0))
    a = sample_batch(whole, crops, 4, 3, random.Random(1))
    b = sample_batch(whole, crops, 4, 3, random.Random(1))
    assert a.whole_idx == b.whole_idx
    assert a.crop_idx == b.crop_idx
    assert torch.equal(a.weights_whole, b.weights_whole)
    assert a.weights_whole.shape == (4, 7)
    assert all(a.weights_whole[i, i] == 1 for i in range(4))
    assert all(a.weights_crop[j, 4 + j] == 1 for j in range(3))
    for i, k in zip(a.whole_idx, a.focal, strict=True):
        obj, cells = whole.objects[i][k], whole.cells[i][k]
        labels = {int(whole.labels[i, 0, c]) for c in cells}
        # Cells come from the same geometry as the labels (a lone cell may be a fallback).
        assert KIND_INDEX[obj.kind] + 1 in labels or len(cells) == 1


@pytest.mark.parametrize("grid", ASPECT_GRIDS)
def test_keep_aspect_banks_hold_what_the_engine_gives_the_model(grid):
    """The pixels are the engine's keep-aspect input for the same painting, and each object's
    cells are the cells of the engine's grid that its box covers."""
    processor = CLIPImageProcessor()
    preprocess = Preprocess.from_processor(processor)
    seeds = range(20, 24)
    bank = build_aspect_bank(seeds, False, grid, processor)
    rows, cols = grid
    assert bank.grid == grid
    assert bank.pixels.shape[1:] == (3, rows * 32, cols * 32)
    assert bank.labels.shape[1:] == (2, rows * cols)
    shown = [make_scene(seed, aspect=cols / rows) for seed in seeds]
    shown = [(image, scene) for image, scene in shown if scene.objects]
    assert len(bank) == len(shown) > 0
    for i, (image, scene) in enumerate(shown):
        assert bank.scenes[i] == scene.facts()
        assert painting_grid(image.size) == grid
        expected = preprocess.aspect_pixel_values(image, 224, 32)
        assert np.abs(normalise(bank.pixels[i : i + 1]).numpy() - expected).max() < 0.02
        boxes = grid_boxes(image.size, grid)
        for obj, cells in zip(draw_order(scene), bank.cells[i], strict=True):
            x0, y0, x1, y1 = obj.box
            inside = [
                r * cols + c
                for r in range(rows)
                for c in range(cols)
                if x0 <= (boxes[r][c][0] + boxes[r][c][2]) / 2 <= x1
                and y0 <= (boxes[r][c][1] + boxes[r][c][3]) / 2 <= y1
            ]
            under = grid_cell_at(image.size, *obj.centre(), grid)
            assert list(cells) == (inside or [under[0] * cols + under[1]])
        top = {int(bank.labels[i, 0, c]) for c in bank.cells[i][-1]}
        assert top == {KIND_INDEX[bank.objects[i][-1].kind] + 1}
