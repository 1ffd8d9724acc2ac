"""The text encoder a model set embeds sentences with, and its int8 form for CPUs.

`MODEL_DTYPE=int8` is for embedding a corpus on a CPU-only machine. It quantises every linear
layer of CLIP's text transformer with torchao's dynamic int8 scheme: int8 weights per output
channel, int8 activations per token, and scales computed at run time (so no calibration data).
The vision tower stays in fp32, because Grad-ECLIP takes gradients through it, and an image is
embedded once per upload anyway.

torchao's int8 matrix products pay off only once `torch.compile` fuses the quantisation of
each activation into them. Run eagerly, the int8 encoder was slower than bf16 on the dev VM.
Compiling takes about a minute on two cores (once per process, with dynamic shapes so every
batch shape reuses it; inductor caches its kernels on disk). So the encoder is compiled for
calls of at least `COMPILE_FROM` sentences, such as a corpus import, and runs eagerly for
queries. Compiling needs a C++ compiler (`g++`, or `$CXX`), as inductor's CPU backend does;
without one the encoder says so once and stays eager.

Measured on the B/32-shaped text encoder, batch 32, 2 cores (docs/benchmarks.md):
- Zen 5 VM: fp32 66/s, bf16 197/s, int8 eager 116/s, int8 compiled 310/s; the int8 vectors
  kept a cosine of at least 0.9993 to fp32's.
- Zen 4 VM: fp32 47/s, int8 compiled 182/s.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
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
                compiler = os.environ.get("CXX") or "g++"
                if shutil.which(compiler) is None:
                    logger.warning(
                        "No C++ compiler (%s) to compile the int8 text encoder with; it runs "
                        "eagerly, slower than bf16. Install g++ to import at full speed.",
                        compiler,
                    )
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


def int8_text_encoder(text_model: torch.nn.Module, compile_from: int | None) -> TextEncoder:
    """Quantise `text_model`'s linear layers to dynamic int8, in place (the fp32 weights are
    not needed afterwards), and wrap it to be compiled for calls of `compile_from` or more."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(text_model, Int8DynamicActivationInt8WeightConfig())
    return TextEncoder(text_model, int8=True, compile_from=compile_from)
