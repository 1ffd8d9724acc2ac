"""The encoders a model set embeds sentences and images with, and their int8 forms for CPUs.

`MODEL_DTYPE=int8` is for embedding a corpus on a CPU-only machine. It quantises every linear
layer of CLIP's text transformer with torchao's dynamic int8 scheme: int8 weights per output
channel, int8 activations per token, and scales computed at run time (so no calibration data).
The vision tower itself stays in fp32, because Grad-ECLIP takes gradients through it. Image
retrieval (an upload's embedding and its grid cells) runs a quantised copy of it instead, compiled
on its first image: the worker embeds a blank image before its first job so that no researcher
waits for the compile.

torchao's int8 matrix products pay off only once `torch.compile` fuses the quantisation of
each activation into them. Run eagerly, the int8 encoder was slower than bf16 on the dev VM.
Compiling takes about a minute on two cores (once per process, with dynamic shapes so every
batch shape reuses it; inductor caches its kernels on disk). So the encoder is compiled for
calls of at least `COMPILE_FROM` sentences, such as a corpus import, and runs eagerly for
queries. Compiling needs a C++ compiler (`g++`, or `$CXX`), as inductor's CPU backend does;
without one the encoder says so once and stays eager.

Measured on the B/32-shaped towers, 2 cores (docs/benchmarks.md):
- text encoder, batch 32, Zen 5 VM: fp32 66/s, bf16 197/s, int8 eager 116/s, int8 compiled
  310/s; the int8 vectors kept a cosine of at least 0.9993 to fp32's. Zen 4 VM: fp32 47/s,
  int8 compiled 182/s.
- vision tower, one image, Zen 4 VM: fp32 89 ms, bf16 41-45 ms, int8 eager 69 ms, int8
  compiled 33 ms after a 32 s compile.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger("apps.engine")

COMPILE_FROM = 2048
"""Sentences in one call from which the int8 encoder is compiled. The compile (45-75 s on two
cores) pays for itself after about 8,000 sentences, once per process. `embed_corpus` embeds
slices of 8,192, so it compiles on the first and gains on every later one; queries and
heatmap texts stay far below."""


class TextEncoder:
    """CLIP's text transformer, run as loaded or (`compile_from`) compiled for big calls;
    `int8` says its linear layers were quantised."""

    def __init__(
        self, module: torch.nn.Module, *, int8: bool = False, compile_from: int | None = None
    ) -> None:
        self.module = module
        self.int8 = int8
        self.compile_from = compile_from
        self._compiled: Callable[..., Any] | None = None
        self._lock = threading.Lock()

    def for_texts(self, count: int) -> Callable[..., Any]:
        """The callable to embed `count` sentences with."""
        if self.compile_from is None or count < self.compile_from:
            return self.module
        with self._lock:
            if self._compiled is None:
                if not can_compile("the int8 text encoder", "Install g++ to import at full speed."):
                    self.compile_from = None
                    return self.module
                logger.info(
                    "Compiling the int8 text encoder for a call of %d sentences: the first "
                    "batch waits for it (about a minute on two cores, once per process).",
                    count,
                )
                self._compiled = torch.compile(self.module, dynamic=True)
            return self._compiled

    @property
    def compiled(self) -> bool:
        return self._compiled is not None


def can_compile(what: str, advice: str) -> bool:
    """Whether inductor finds its C++ compiler (`$CXX`, else g++); if not, say so once for
    `what`, which then runs eagerly."""
    compiler = os.environ.get("CXX") or "g++"
    if shutil.which(compiler) is not None:
        return True
    logger.warning(
        "No C++ compiler (%s) to compile %s with; it runs eagerly, slower than bf16. %s",
        compiler,
        what,
        advice,
    )
    return False


class VisionTokens(torch.nn.Module):
    """CLIP's vision tower up to the joint embedding space, for every output token: the class
    token is the image embedding (`CLIPModel.get_image_features`), the patch tokens make the
    grid cells."""

    def __init__(self, vision_model: torch.nn.Module, visual_projection: torch.nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.visual_projection = visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.vision_model(pixel_values=pixel_values).last_hidden_state
        return self.visual_projection(self.vision_model.post_layernorm(hidden))


@dataclass(frozen=True)
class VisionEncoder:
    """What embeds images for retrieval: `run(pixel_values)` gives all output tokens [B, 1+P, D].
    `int8` says it runs a quantised copy of the tower (the tower itself stays as loaded)."""

    run: Callable[[torch.Tensor], torch.Tensor]
    int8: bool = False


def int8_vision_encoder(clip: torch.nn.Module, *, compile: bool = True) -> VisionEncoder:
    """A dynamic-int8 copy of `clip`'s vision tower and projection (about a quarter of the
    fp32 tower's memory), compiled on its first image when `compile` and a C++ compiler allow."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    module = VisionTokens(copy.deepcopy(clip.vision_model), copy.deepcopy(clip.visual_projection))
    quantize_(module, Int8DynamicActivationInt8WeightConfig())
    if compile and can_compile(
        "the int8 vision encoder", "Install g++ for the full speed of image analyses."
    ):
        return VisionEncoder(run=torch.compile(module), int8=True)
    return VisionEncoder(run=module, int8=True)


def int8_text_encoder(text_model: torch.nn.Module, compile_from: int | None) -> TextEncoder:
    """Quantise `text_model`'s linear layers to dynamic int8, in place (the fp32 weights are
    not needed afterwards), and wrap it to be compiled for calls of `compile_from` or more."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(text_model, Int8DynamicActivationInt8WeightConfig())
    return TextEncoder(text_model, int8=True, compile_from=compile_from)
