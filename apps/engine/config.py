"""Configuration of the engine: which models exist and where their weights come from.

The engine never reads Django settings. A host (the Django site, a worker, a benchmark) builds
`ModelSpec`s, usually from environment variables with `specs_from_env`, and hands them to a
`ModelRegistry` or to `engine.configure`. Keeping configuration as plain data makes the engine
importable anywhere and keeps the names of the settings in one place, so error messages can tell
an operator exactly which setting to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
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
class ModelEntry:
    """One model key the project knows: what it is called and where its weights come from
    unless settings say otherwise.

    `label` is the model's name for people and in the public ArteFact dataset layout, whose
    sentence records carry a flag `Has <label> Embedding` per model.
    """

    key: str
    label: str
    default_base: str
    default_adapter: str | None = None


MODEL_TABLE: tuple[ModelEntry, ...] = (
    ModelEntry("clip", "CLIP", str(DEMO_BASE_MODEL)),
    ModelEntry(
        "paintingclip", "PaintingCLIP", str(DEMO_BASE_MODEL), str(DEMO_PAINTINGCLIP_ADAPTER)
    ),
)
"""Every model key, in the order people see them. Adding a model is one entry here: its
settings (`<KEY>_BASE_MODEL`, `<KEY>_ADAPTER`), the API's model list, the corpus flags and the
portal's model switch all follow from it."""

DEFAULT_MODEL_KEY = "paintingclip"
"""The model an analysis or a text search uses when the request names none."""


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


def specs_from_env(
    environ: Mapping[str, str], table: Sequence[ModelEntry] | None = None
) -> EngineConfig:
    """Read the model settings from an environment mapping (usually `os.environ`).

    Variables: per entry of `table` (default `MODEL_TABLE`) `<KEY>_BASE_MODEL` and
    `<KEY>_ADAPTER` (`CLIP_BASE_MODEL`, `PAINTINGCLIP_ADAPTER`, ...), then `MODEL_DEVICE`
    (auto|cpu|cuda|mps), `MODEL_DTYPE`
    (auto|fp32|fp16|bf16|int8; int8 is for a CPU: int8 copies of the encoders, see
    `apps.engine.quantization`), `MODEL_INT8_KERNELS` (auto|torchao|fbgemm: whose int8 kernels;
    auto picks the ones that suit the CPU). Unset variables take the entry's defaults; an empty
    adapter means "no adapter".
    """
    table = MODEL_TABLE if table is None else table

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
    specs = []
    for entry in table:
        spec = ModelSpec(key=entry.key, base=entry.default_base)
        specs.append(
            ModelSpec(
                key=entry.key,
                base=get(spec.base_setting, entry.default_base) or entry.default_base,
                adapter=get(spec.adapter_setting, entry.default_adapter or ""),
            )
        )
    return EngineConfig(specs=tuple(specs), device=device, dtype=dtype, int8_kernels=int8_kernels)


def model_settings_from_env(
    environ: Mapping[str, str], table: Sequence[ModelEntry] | None = None
) -> dict[str, str]:
    """The model variables that are set in `environ`, by name: what a host keeps in its own
    settings and hands to `specs_from_env` (unset ones then take the table's defaults)."""
    names = ["MODEL_DEVICE", "MODEL_DTYPE", "MODEL_INT8_KERNELS"]
    for entry in MODEL_TABLE if table is None else table:
        spec = ModelSpec(key=entry.key, base=entry.default_base)
        names += [spec.base_setting, spec.adapter_setting]
    return {name: environ[name] for name in names if name in environ}


_configured: EngineConfig | None = None


def configure_engine(config: EngineConfig) -> None:
    """Set this process's model configuration (a host does it once, at start-up). Torch-free:
    web processes configure the engine to know the model keys without loading any model; the
    registry of `apps.engine.registry` builds its models from this configuration when a model
    is first asked for, and builds afresh when the configuration changes."""
    global _configured
    _configured = config


def engine_config() -> EngineConfig:
    """The configuration `configure_engine` set, else the one the environment gives (so that
    scripts and benchmarks work without a host)."""
    global _configured
    if _configured is None:
        _configured = specs_from_env(os.environ)
    return _configured


def model_keys() -> list[str]:
    """The configured model keys, in the table's order."""
    return [spec.key for spec in engine_config().specs]


def model_label(model_key: str) -> str:
    """The model's name for people (the key itself for a key not in the table)."""
    return next((entry.label for entry in MODEL_TABLE if entry.key == model_key), model_key)


def dataset_flag(model_key: str) -> str:
    """The column of sentences.json in the ArteFact layout that says whether a sentence has a
    vector of `model_key`: `Has <label> Embedding`."""
    return f"Has {model_label(model_key)} Embedding"


def default_model_key() -> str:
    """`DEFAULT_MODEL_KEY` when it is configured, else the first configured key."""
    keys = model_keys()
    return DEFAULT_MODEL_KEY if DEFAULT_MODEL_KEY in keys else keys[0]
