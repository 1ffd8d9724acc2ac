"""The model registry: loads each configured CLIP (+ optional LoRA) lazily, once, thread-safely.

Why a registry object rather than module globals: the host decides what to load (settings,
tests, benchmarks each want different models) and a worker process must load every model once,
never per job. The registry is that "once": `get(key)` loads on first use under a per-key lock and
caches the result for the life of the process.

Failure policy:
- a missing or unreachable *base* model is an operator error: `ModelLoadError`, one message that
  names the setting to fix;
- a missing *adapter* degrades gracefully: a logged warning, the base model is used, and
  `status()` shows `adapter_state == "missing (fallback to base)"` so health checks can surface it.

With `HF_HUB_OFFLINE=1` (read when a model loads, not only when huggingface_hub is imported) all
loads use `local_files_only`, so an unreachable hub fails at once instead of retrying for a minute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import torch
from peft import PeftConfig, PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers import CLIPModel, CLIPProcessor, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from apps.engine.config import (
    DEVICES,
    DTYPES,
    INT8_KERNEL_CHOICES,
    EngineConfig,
    ModelSpec,
    configure_engine,
    engine_config,
)
from apps.engine.images import Preprocess
from apps.engine.quantization import (
    COMPILE_FROM,
    INT8_DOT_PRODUCT,
    TextEncoder,
    VisionEncoder,
    VisionTokens,
    choose_int8_kernels,
    int8_text_encoder,
    int8_vision_encoder,
)

logger = logging.getLogger("apps.engine")

ADAPTER_LOADED = "loaded"
ADAPTER_NONE = "none"
ADAPTER_MISSING = "missing (fallback to base)"

PROJECTION_MODULES = frozenset({"text_projection", "visual_projection"})
"""Layers an adapter may touch while the text and vision encoders stay shared with the base."""

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class ModelLoadError(RuntimeError):
    """A base model could not be loaded; the message names the setting to fix."""


class UnknownModelError(LookupError):
    """A model key that the registry was not configured with."""


@dataclass(frozen=True)
class LoadedModel:
    """One ready-to-run model set. `model` is a `CLIPModel`, or a `PeftModel` around one when the
    registry keeps adapters unmerged; `clip` always gives the `CLIPModel` whose submodules run."""

    spec: ModelSpec
    model: CLIPModel | PeftModel
    tokenizer: PreTrainedTokenizerBase
    preprocess: Preprocess
    device: torch.device
    dtype: torch.dtype
    adapter_state: str
    adapter_modules: frozenset[str]
    """Names (relative to the CLIPModel) of the layers the adapter changed; empty without one."""
    text_encoder: TextEncoder
    """What embeds sentences: `clip.text_model`, quantised to int8 with `MODEL_DTYPE=int8`."""
    vision_encoder: VisionEncoder
    """What embeds images for retrieval: the vision tower as loaded, or with `MODEL_DTYPE=int8`
    a quantised copy (Grad-ECLIP always runs the tower as loaded)."""

    @property
    def clip(self) -> CLIPModel:
        return _clip_of(self.model)

    @property
    def text_int8(self) -> bool:
        return self.text_encoder.int8

    @property
    def embed_dim(self) -> int:
        return self.clip.config.projection_dim

    @property
    def max_text_length(self) -> int:
        return self.clip.config.text_config.max_position_embeddings

    @property
    def patch_size(self) -> int:
        return self.clip.config.vision_config.patch_size

    def shares_text_encoder_with(self, other: LoadedModel) -> bool:
        """True when both run the same text encoder weights, so one encoder pass serves both:
        same base, device, dtype and quantisation, and adapters (if any) only touch the
        projections."""
        return (
            self.spec.base == other.spec.base
            and self.device == other.device
            and self.dtype == other.dtype
            and self.text_int8 == other.text_int8
            and self.adapter_modules <= PROJECTION_MODULES
            and other.adapter_modules <= PROJECTION_MODULES
        )


def _clip_of(model: CLIPModel | PeftModel) -> CLIPModel:
    """The CLIPModel whose submodules run, inside a PeftModel or not."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then CPU."""
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not one of {', '.join(DEVICES)}.")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The dtype of the weights. `auto` is fp32 on CPU (fast half-precision kernels are not a
    given there), bf16 on CUDA GPUs that support it, otherwise fp16. `int8` is a CPU option
    that keeps fp32 weights and quantises the text encoder after loading
    (`apps.engine.quantization`)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not one of {', '.join(DTYPES)}.")
    if dtype == "int8":
        if device.type != "cpu":
            raise ValueError(
                "dtype='int8' quantises the text encoder for a CPU; on a GPU use bf16 or fp16."
            )
        return torch.float32
    if dtype != "auto":
        return _DTYPES[dtype]
    if device.type == "cpu":
        return torch.float32
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


# x86 instructions that make int8 or bf16 matrix products faster than fp32 on a CPU, and their
# names for a warning. Without them torch emulates the narrow type, and the "fast" dtype is the
# slow one: on an AVX2-only EPYC (Zen 1) the ViT-B/32 image pass took 2.3 s with torchao's int8
# kernels and 1.1 s in bf16, against 0.23 s in fp32 (docs/benchmarks/embedding.md). fbgemm's
# int8 kernels need only AVX2 (`apps.engine.quantization.choose_int8_kernels`).
_CPU_INSTRUCTIONS = {
    "torchao": (INT8_DOT_PRODUCT, "AVX-512 VNNI, AVX-VNNI or AMX"),
    "fbgemm": (("avx2",), "AVX2"),
    "bf16": (("avx512_bf16", "amx_bf16"), "AVX-512 BF16 or AMX"),
}


def cpu_dtype_warning(
    dtype: str,
    device: torch.device,
    capabilities: Mapping[str, Any] | None = None,
    int8_kernels: str | None = None,
) -> str | None:
    """A sentence for the operator when `dtype` (with `int8_kernels`, by default the ones
    chosen for the CPU) would run slower than fp32 on this CPU because it lacks their
    instructions, else None. Only x86 CPUs are judged; elsewhere nothing is said."""
    if device.type != "cpu" or dtype not in ("int8", "bf16"):
        return None
    if capabilities is None:
        capabilities = torch.cpu.get_capabilities()
    if capabilities.get("architecture") not in ("x86_64", "x86"):
        return None
    kernels = (int8_kernels or choose_int8_kernels(capabilities)) if dtype == "int8" else None
    flags, names = _CPU_INSTRUCTIONS[kernels or dtype]
    if any(capabilities.get(flag) for flag in flags):
        return None
    setting = f"MODEL_DTYPE={dtype}" + (f" with {kernels}'s kernels" if kernels else "")
    return (
        f"{setting} on a CPU without {names} "
        f"({capabilities.get('cpu_name') or 'unknown model'}): torch emulates {dtype} there, "
        f"several times slower than fp32; use MODEL_DTYPE=fp32 on this machine."
    )


def hub_offline() -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return flag in {"1", "ON", "YES", "TRUE"} or bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `owner/name`; anything else (absolute, `./x`, `~/x`, `a/b/c`) is
    meant as a folder, so a missing one must not be looked up on the hub."""
    separators = name.count("/") + (name.count(os.sep) if os.sep != "/" else 0)
    return os.path.isabs(name) or name.startswith((".", "~")) or separators > 1


def _local_folder(name: str) -> Path | None:
    path = Path(name).expanduser()
    return path.resolve() if path.is_dir() else None


class ModelRegistry:
    """Lazily loads and caches the configured model sets.

    `merge_adapters=True` (the default) folds each LoRA into its base weights after loading:
    identical outputs, no adapter overhead at inference. `False` keeps the `PeftModel` wrapper
    (useful to inspect or switch adapters); every engine function accepts either.
    With `dtype="int8"`, `compile_text_from` is the call size from which the quantised text
    encoder is compiled (None: never), `compile_vision` whether the quantised vision encoder
    is compiled on its first image (both for torchao's kernels), and `int8_kernels` overrides
    the choice of kernels for this CPU ("torchao" or "fbgemm"; "auto" lets the CPU decide).
    """

    def __init__(
        self,
        specs: Iterable[ModelSpec],
        device: str = "auto",
        dtype: str = "auto",
        *,
        merge_adapters: bool = True,
        compile_text_from: int | None = COMPILE_FROM,
        compile_vision: bool = True,
        int8_kernels: str = "auto",
    ) -> None:
        self.specs = {spec.key: spec for spec in specs}
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.int8 = dtype == "int8"
        """int8 text and vision encoders (the tower itself stays as loaded for Grad-ECLIP)."""
        if int8_kernels not in INT8_KERNEL_CHOICES:
            raise ValueError(f"int8_kernels={int8_kernels!r} is not auto, torchao or fbgemm.")
        if not self.int8:
            self.int8_kernels = None
        elif int8_kernels == "auto":
            self.int8_kernels = choose_int8_kernels()
        else:
            self.int8_kernels = int8_kernels
        """With int8: "torchao" or "fbgemm", whose kernels the encoders run."""
        self.dtype_warning = cpu_dtype_warning(dtype, self.device, int8_kernels=self.int8_kernels)
        if self.dtype_warning:
            logger.warning(self.dtype_warning)
        self.compile_text_from = compile_text_from
        self.compile_vision = compile_vision
        self.merge_adapters = merge_adapters
        self._loaded: dict[str, LoadedModel] = {}
        self._errors: dict[str, str] = {}
        self._locks = {key: threading.Lock() for key in self.specs}
        self.config: EngineConfig | None = None
        """The configuration this registry was built from, when `from_config` built it."""

    @classmethod
    def from_config(cls, config: EngineConfig) -> ModelRegistry:
        registry = cls(config.specs, config.device, config.dtype, int8_kernels=config.int8_kernels)
        registry.config = config
        return registry

    @property
    def int8_text(self) -> bool:
        """Whether the text encoder is int8 too. With fbgemm's kernels it stays as loaded: their
        one activation scale per tensor kept sentence vectors at a cosine of only 0.997 to fp32's
        (torchao's: 0.999), for 1.6x fp32's rate, and a CPU without VNNI is no place for a corpus
        import anyway (docs/benchmarks/embedding.md)."""
        return self.int8_kernels == "torchao"

    def keys(self) -> list[str]:
        return list(self.specs)

    def get(self, key: str) -> LoadedModel:
        """The loaded model set for `key`, loading it on first use."""
        if key not in self.specs:
            raise UnknownModelError(
                f"Unknown model {key!r}; configured models: {', '.join(self.specs) or 'none'}."
            )
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        with self._locks[key]:
            if key not in self._loaded:
                try:
                    self._loaded[key] = self._load(self.specs[key])
                except ModelLoadError as exc:
                    self._errors[key] = str(exc)
                    raise
                self._errors.pop(key, None)
            return self._loaded[key]

    def status(self, *, load: bool = False) -> dict[str, dict[str, Any]]:
        """Per key: what is configured and what is loaded. With `load=True` each model is loaded
        first (a failure is reported under `error` instead of raised), as a health check wants."""
        report = {}
        dtype = str(self.dtype).removeprefix("torch.")
        vision_encoder = "int8" if self.int8 else dtype
        text_encoder = "int8" if self.int8_text else dtype
        for key, spec in self.specs.items():
            if load:
                with contextlib.suppress(ModelLoadError):  # reported under "error" below
                    self.get(key)
            loaded = self._loaded.get(key)
            report[key] = {
                "loaded": loaded is not None,
                "base": spec.base,
                "adapter": spec.adapter,
                "adapter_state": loaded.adapter_state if loaded else None,
                "device": str(self.device),
                "dtype": dtype,
                "text_encoder": text_encoder,
                "vision_encoder": vision_encoder,
                "int8_kernels": self.int8_kernels,
                "dtype_warning": self.dtype_warning,
                "embedding_dim": loaded.embed_dim if loaded else None,
                "error": self._errors.get(key),
            }
        return report

    def _load(self, spec: ModelSpec) -> LoadedModel:
        offline = hub_offline()
        model, processor = self._load_base(spec, offline)
        model, adapter_state, adapter_modules = self._apply_adapter(spec, model, offline)
        model = model.to(device=self.device, dtype=self.dtype).eval().requires_grad_(False)
        clip = _clip_of(model)
        if self.int8:
            vision_encoder = int8_vision_encoder(
                clip, kernels=self.int8_kernels, compile=self.compile_vision
            )
        else:
            vision_encoder = VisionEncoder(VisionTokens(clip.vision_model, clip.visual_projection))
        if self.int8_text:
            text_encoder = int8_text_encoder(clip.text_model, self.compile_text_from)
        else:
            text_encoder = TextEncoder(clip.text_model)
        logger.info(
            "Loaded model %r: base=%s adapter=%s (%s) on %s/%s%s",
            spec.key,
            spec.base,
            spec.adapter,
            adapter_state,
            self.device,
            self.dtype,
            f", int8 encoders ({self.int8_kernels}): vision{', text' if self.int8_text else ''}"
            if self.int8
            else "",
        )
        return LoadedModel(
            spec=spec,
            model=model,
            tokenizer=processor.tokenizer,
            preprocess=Preprocess.from_processor(processor.image_processor),
            device=self.device,
            dtype=self.dtype,
            adapter_state=adapter_state,
            adapter_modules=adapter_modules,
            text_encoder=text_encoder,
            vision_encoder=vision_encoder,
        )

    def _load_base(self, spec: ModelSpec, offline: bool) -> tuple[CLIPModel, CLIPProcessor]:
        def fail(reason: str) -> ModelLoadError:
            return ModelLoadError(
                f"The base model for {spec.key!r} (setting {spec.base_setting}={spec.base!r}) "
                f"could not be loaded: {reason}."
            )

        folder = _local_folder(spec.base)
        if folder is None and _looks_like_path(spec.base):
            raise fail("the folder does not exist")
        source = str(folder) if folder else spec.base
        try:
            # Weights load in fp32 so a LoRA merges at full precision; the cast comes after.
            model = CLIPModel.from_pretrained(source, local_files_only=offline)
            processor = CLIPProcessor.from_pretrained(source, local_files_only=offline)
        except (OSError, ValueError) as exc:
            if folder:
                raise fail(f"the folder exists but holds no loadable CLIP model ({exc})") from exc
            if offline:
                raise fail(
                    "it is not a local folder and the Hugging Face hub is unreachable "
                    "(HF_HUB_OFFLINE=1)"
                ) from exc
            raise fail(f"it is not a local folder and the Hugging Face hub failed ({exc})") from exc
        return model, processor

    def _apply_adapter(
        self, spec: ModelSpec, model: CLIPModel, offline: bool
    ) -> tuple[CLIPModel | PeftModel, str, frozenset[str]]:
        if spec.adapter is None:
            return model, ADAPTER_NONE, frozenset()

        def missing(reason: str) -> tuple[CLIPModel, str, frozenset[str]]:
            logger.warning(
                "The adapter for %r (setting %s=%r) is missing: %s. Falling back to the base "
                "model, so %r results equal the plain base model's.",
                spec.key,
                spec.adapter_setting,
                spec.adapter,
                reason,
                spec.key,
            )
            return model, ADAPTER_MISSING, frozenset()

        folder = _local_folder(spec.adapter)
        if folder is None and _looks_like_path(spec.adapter):
            return missing("the folder does not exist")
        source = str(folder) if folder else spec.adapter
        try:
            config = PeftConfig.from_pretrained(source, local_files_only=offline)
        except (OSError, ValueError) as exc:
            where = "not a local folder and the hub is offline" if offline else str(exc)
            return missing(f"no adapter_config.json could be read ({where})")
        try:
            peft_model = PeftModel.from_pretrained(
                model, source, config=config, local_files_only=offline
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(
                f"The adapter for {spec.key!r} (setting {spec.adapter_setting}={spec.adapter!r}) "
                f"exists but does not fit its base model {spec.base!r}: {exc}"
            ) from exc
        prefix = "base_model.model."
        touched = frozenset(
            name.removeprefix(prefix)
            for name, module in peft_model.named_modules()
            if isinstance(module, BaseTunerLayer)
        )
        if config.modules_to_save:
            touched |= frozenset(config.modules_to_save)
        merged = peft_model.merge_and_unload() if self.merge_adapters else peft_model
        return merged, ADAPTER_LOADED, touched


# transformers draws a "Loading weights" bar for every model it loads, twice per worker start
# here; the registry logs each load in one line instead. (Hub downloads keep their own bars.)
transformers_logging.disable_progress_bar()

_default_registry: ModelRegistry | None = None
_default_lock = threading.Lock()


def configure(
    specs: Iterable[ModelSpec],
    device: str = "auto",
    dtype: str = "auto",
    int8_kernels: str = "auto",
) -> ModelRegistry:
    """Set the process's model configuration (`config.configure_engine`) and return the
    registry that engine functions now use when none is passed."""
    configure_engine(EngineConfig(tuple(specs), device, dtype, int8_kernels))
    return get_registry()


def get_registry(registry: ModelRegistry | None = None) -> ModelRegistry:
    """`registry` if given, else the process's one registry, built on first use from
    `config.engine_config()` and built afresh when that configuration has changed (the models
    the old one loaded are dropped with it)."""
    global _default_registry
    if registry is not None:
        return registry
    config = engine_config()
    with _default_lock:
        if _default_registry is None or _default_registry.config is not config:
            _default_registry = ModelRegistry.from_config(config)
        return _default_registry
