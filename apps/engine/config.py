"""Configuration of the engine: which models exist and where their weights come from.

The engine never reads Django settings. A host (the Django site, a worker, a benchmark) builds
`ModelSpec`s, usually from environment variables with `specs_from_env`, and hands them to a
`ModelRegistry` or to `engine.configure`. Keeping configuration as plain data makes the engine
importable anywhere and keeps the names of the settings in one place, so error messages can tell
an operator exactly which setting to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The project root (the folder that holds `apps/`)."""

SHARED_DIR = Path(os.environ.get("ARTEFACT_SHARED_DIR") or REPO_ROOT / ".." / "shared")
"""Read-only reference material beside the checkout (absent on a fresh clone); tests and
benchmarks skip what needs it. `ARTEFACT_SHARED_DIR` points elsewhere, e.g. from a git
worktree that does not sit beside it."""

DEMO_BASE_MODEL = REPO_ROOT / "apps" / "demo" / "weights" / "clip"
DEMO_PAINTINGCLIP_ADAPTER = REPO_ROOT / "apps" / "demo" / "weights" / "paintingclip-lora"

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp32", "fp16", "bf16", "int8")
INT8_KERNELS = ("torchao", "fbgemm")
"""Whose int8 kernels `MODEL_DTYPE=int8` can run (`apps.engine.quantization`)."""
INT8_KERNEL_CHOICES = ("auto", *INT8_KERNELS)


@dataclass(frozen=True)
class ModelSpec:
    """A model set: a base CLIP (hub id or local folder) plus an optional PEFT LoRA adapter.

    `adapter=None` (or an empty string) means "plain base model". The names of the settings that
    configure this spec are derived from the key (`clip` -> `CLIP_BASE_MODEL`, `CLIP_ADAPTER`) so
    that errors can name them.
    """

    key: str
    base: str
    adapter: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("A model key must not be empty.")
        if not self.base:
            raise ValueError(f"The base model for {self.key!r} must not be empty.")
        if self.adapter == "":
            object.__setattr__(self, "adapter", None)

    @property
    def base_setting(self) -> str:
        return f"{self.key.upper()}_BASE_MODEL"

    @property
    def adapter_setting(self) -> str:
        return f"{self.key.upper()}_ADAPTER"


class EngineConfig(NamedTuple):
    """What `specs_from_env` returns; `configure(*config)` accepts it unchanged."""

    specs: tuple[ModelSpec, ...]
    device: str
    dtype: str
    int8_kernels: str = "auto"


def specs_from_env(environ: Mapping[str, str]) -> EngineConfig:
    """Read the model settings from an environment mapping (usually `os.environ`).

    Variables: `CLIP_BASE_MODEL`, `CLIP_ADAPTER`, `PAINTINGCLIP_BASE_MODEL`,
    `PAINTINGCLIP_ADAPTER`, `MODEL_DEVICE` (auto|cpu|cuda|mps), `MODEL_DTYPE`
    (auto|fp32|fp16|bf16|int8; int8 is for a CPU: int8 copies of the encoders, see
    `apps.engine.quantization`), `MODEL_INT8_KERNELS` (auto|torchao|fbgemm: whose int8 kernels;
    auto picks the ones that suit the CPU). Both base models default to the demo CLIP shipped in
    `apps/demo/weights/clip`; PaintingCLIP's adapter defaults to the demo LoRA beside it and plain
    CLIP has none. An empty value means "no adapter".
    """

    def get(name: str, default: str) -> str:
        value = environ.get(name)
        return default if value is None else value.strip()

    device = get("MODEL_DEVICE", "auto").lower() or "auto"
    dtype = get("MODEL_DTYPE", "auto").lower() or "auto"
    if device not in DEVICES:
        raise ValueError(f"MODEL_DEVICE={device!r} is not one of {', '.join(DEVICES)}.")
    if dtype not in DTYPES:
        raise ValueError(f"MODEL_DTYPE={dtype!r} is not one of {', '.join(DTYPES)}.")
    int8_kernels = get("MODEL_INT8_KERNELS", "auto").lower() or "auto"
    if int8_kernels not in INT8_KERNEL_CHOICES:
        raise ValueError(
            f"MODEL_INT8_KERNELS={int8_kernels!r} is not one of {', '.join(INT8_KERNEL_CHOICES)}."
        )
    specs = (
        ModelSpec(
            key="clip",
            base=get("CLIP_BASE_MODEL", str(DEMO_BASE_MODEL)) or str(DEMO_BASE_MODEL),
            adapter=get("CLIP_ADAPTER", ""),
        ),
        ModelSpec(
            key="paintingclip",
            base=get("PAINTINGCLIP_BASE_MODEL", str(DEMO_BASE_MODEL)) or str(DEMO_BASE_MODEL),
            adapter=get("PAINTINGCLIP_ADAPTER", str(DEMO_PAINTINGCLIP_ADAPTER)),
        ),
    )
    return EngineConfig(specs=specs, device=device, dtype=dtype, int8_kernels=int8_kernels)
