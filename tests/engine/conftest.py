"""Fixtures for the engine: tiny random CLIPs saved to disk and loaded through the registry.

Real weights never load in tests (model hubs are unreachable); a tiny CLIP exercises exactly
the same code paths in milliseconds. The vision tower sees 64x64 crops in 16-pixel patches, so
its patch grid is 4x4; the text tower has a 16-token context so truncation is easy to reach.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizer,
)

from apps.engine import ModelRegistry, ModelSpec
from apps.engine.config import SHARED_DIR

SHARED = SHARED_DIR.resolve()
CROP = 64
PATCH = 16


def write_tokenizer(folder: Path) -> CLIPTokenizer:
    """A CLIP BPE tokenizer over lower-case letters, digits and punctuation, with a few merges."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(string.ascii_lowercase + string.digits + ".,;:'!?-()")
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for symbol in symbols:
            vocab[symbol + suffix] = len(vocab)
    merges = ["t h", "th e</w>", "a n", "an d</w>", "o f</w>"]
    for merge in merges:
        vocab[merge.replace(" ", "")] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer.from_pretrained(folder)


def tiny_config(tokenizer: CLIPTokenizer) -> CLIPConfig:
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": CROP,
        "patch_size": PATCH,
    }
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)


def save_clip(model: CLIPModel, tokenizer: CLIPTokenizer, folder: Path, crop: int) -> Path:
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": crop}, crop_size={"height": crop, "width": crop}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def save_lora(model: CLIPModel, folder: Path, seed: int, rank: int = 4) -> Path:
    """A random LoRA on the two projections (non-zero B, so it changes the outputs)."""
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=["text_projection", "visual_projection"],
        init_lora_weights=False,
    )
    get_peft_model(model, config).save_pretrained(folder)
    return folder


@dataclass(frozen=True)
class TinyClip:
    base: Path
    adapter: Path
    other_adapter: Path

    def registry(self, **kwargs) -> ModelRegistry:
        """Keys: `clip` (base), `paintingclip` (base + LoRA), `otherclip` (another LoRA)."""
        specs = [
            ModelSpec("clip", str(self.base)),
            ModelSpec("paintingclip", str(self.base), str(self.adapter)),
            ModelSpec("otherclip", str(self.base), str(self.other_adapter)),
        ]
        return ModelRegistry(specs, device="cpu", dtype="fp32", **kwargs)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> TinyClip:
    root = tmp_path_factory.mktemp("tiny_clip")
    tokenizer = write_tokenizer(root / "tokenizer-source")
    torch.manual_seed(0)
    config = tiny_config(tokenizer)
    base = save_clip(CLIPModel(config), tokenizer, root / "base", CROP)
    adapter = save_lora(CLIPModel.from_pretrained(base), root / "lora", seed=1)
    other = save_lora(CLIPModel.from_pretrained(base), root / "lora-other", seed=2, rank=2)
    return TinyClip(base=base, adapter=adapter, other_adapter=other)


@pytest.fixture(scope="session")
def registry(tiny_clip: TinyClip) -> ModelRegistry:
    return tiny_clip.registry()


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"reference material not found at {SHARED} (../shared beside the repo)")
    return SHARED
