"""The encoders a model set embeds sentences and images with, and their int8 forms for CPUs.

`MODEL_DTYPE=int8` is for a CPU-only machine. Image retrieval (an upload's embedding and its
grid cells) runs a dynamic-int8 copy of the vision tower: int8 weights per output channel, int8
activations, and scales computed at run time (so no calibration data). The tower itself stays
in fp32, because Grad-ECLIP takes gradients through it. With torchao's kernels every linear
layer of the text transformer is quantised the same way. Which kernels run depends on the CPU
(the last paragraph).

With torchao's kernels (where the CPU has an int8 dot product), activations are quantised per
token. Their int8 matrix products pay off only once `torch.compile` fuses the quantisation of
each activation into them; run eagerly, the int8 text encoder was slower than bf16 on the dev
VM. Compiling takes about a minute on two cores (once per process, with dynamic shapes so every
batch shape reuses it; inductor caches its kernels on disk). So the text encoder is compiled
for calls of at least `COMPILE_FROM` sentences, such as a corpus import, and runs eagerly for
queries; the vision copy is compiled on its first image, which a worker embeds (a blank one)
before its first job so that no researcher waits for the compile. Compiling needs a C++
compiler (`g++`, or `$CXX`), as inductor's CPU backend does; without one the encoder says so
once and stays eager.

Measured on the B/32-shaped towers, 2 cores (docs/benchmarks.md):
- text encoder, batch 32, Zen 5 VM: fp32 66/s, bf16 197/s, int8 eager 116/s, int8 compiled
  310/s; the int8 vectors kept a cosine of at least 0.9993 to fp32's. Zen 4 VM: fp32 47/s,
  int8 compiled 182/s.
- vision tower, one image, Zen 4 VM: fp32 89 ms, bf16 41-45 ms, int8 eager 69 ms, int8
  compiled 33 ms after a 32 s compile.

Two sets of int8 kernels, chosen per CPU (`choose_int8_kernels`). torchao's rest on an int8 dot
product (AVX-512 VNNI, AVX-VNNI, AMX on x86; any non-x86 CPU gets them too). An x86 CPU with
AVX2 and no VNNI has no fast kernel for them (`torch._int_mm` at 64 x 768 x 3072 took 206 ms
on a Zen 1 EPYC, against 7-9 ms in fp32), so there the vision copy takes fbgemm's dynamic int8
linear layers instead, which multiply with AVX2's 16-bit multiply-adds: int8 weights per output
channel, activations quantised per tensor at run time, eager (no compile, no C++ compiler).
On a Zen 3 EPYC (2 cores) the B/32 vision tower took 58 ms with them against 123 ms in fp32.
The text encoder stays in fp32 there (`ModelRegistry.int8_text` says why). torch has deprecated
the eager `torch.ao.quantization` API in favour of torchao, whose replacement is the slow path
above on these CPUs (pytorch/ao#4365); the pinned torch still ships it.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger("apps.engine")

COMPILE_FROM = 2048
"""Sentences in one call from which the int8 encoder is compiled. The compile (45-75 s on two
cores) pays for itself after about 8,000 sentences, once per process. `embed_corpus` embeds
slices of 8,192, so it compiles on the first and gains on every later one; queries and
heatmap texts stay far below."""


INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "amx_int8")
"""x86 instructions with an int8 dot product, which torchao's int8 kernels need."""


def choose_int8_kernels(capabilities: Mapping[str, Any] | None = None) -> str:
    """Whose int8 kernels suit the CPU: fbgemm's on an x86 CPU that has AVX2 but no int8 dot
    product, else torchao's. `capabilities` is `torch.cpu.get_capabilities()` (read when not
    given)."""
    if capabilities is None:
        capabilities = torch.cpu.get_capabilities()
    x86 = capabilities.get("architecture") in ("x86_64", "x86")
    if x86 and capabilities.get("avx2") and not any(map(capabilities.get, INT8_DOT_PRODUCT)):
        return "fbgemm"
    return "torchao"


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

    def forward(
        self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False
    ) -> torch.Tensor:
        """[B, 3, H, W] -> [B, 1 + P, D]; H and W other than the model's square need
        `interpolate_pos_encoding`."""
        hidden = self.vision_model(
            pixel_values=pixel_values, interpolate_pos_encoding=interpolate_pos_encoding
        ).last_hidden_state
        return self.visual_projection(self.vision_model.post_layernorm(hidden))


@dataclass(frozen=True)
class VisionEncoder:
    """What embeds images for retrieval: `run(pixel_values)` gives all output tokens [B, 1+P, D]
    (`run(pixel_values, interpolate_pos_encoding=True)` for input other than the square).
    `int8` says it runs a quantised copy of the tower (the tower itself stays as loaded)."""

    run: Callable[..., torch.Tensor]
    int8: bool = False


def int8_vision_encoder(
    clip: torch.nn.Module, *, kernels: str = "torchao", compile: bool = True
) -> VisionEncoder:
    """A dynamic-int8 copy of `clip`'s vision tower and projection (about a quarter of the
    fp32 tower's memory). With torchao's `kernels` it is compiled on its first image when
    `compile` and a C++ compiler allow; fbgemm's run eagerly, and cover the patch embedding too."""
    module = VisionTokens(copy.deepcopy(clip.vision_model), copy.deepcopy(clip.visual_projection))
    if kernels == "fbgemm":
        embeddings = module.vision_model.embeddings
        embeddings.patch_embedding = PatchProjection(embeddings.patch_embedding)
        return VisionEncoder(run=_fbgemm_int8(module), int8=True)
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(module, Int8DynamicActivationInt8WeightConfig())
    if compile and can_compile(
        "the int8 vision encoder", "Install g++ for the full speed of image analyses."
    ):
        return VisionEncoder(run=torch.compile(module), int8=True)
    return VisionEncoder(run=module, int8=True)


def int8_text_encoder(text_model: torch.nn.Module, compile_from: int | None) -> TextEncoder:
    """Quantise `text_model`'s linear layers to torchao's dynamic int8, in place (the fp32
    weights are not needed afterwards), and wrap it to be compiled for calls of `compile_from`
    sentences or more."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(text_model, Int8DynamicActivationInt8WeightConfig())
    return TextEncoder(text_model, int8=True, compile_from=compile_from)


def _fbgemm_int8(module: torch.nn.Module) -> torch.nn.Module:
    """`module` with each `nn.Linear` replaced, in place, by fbgemm's dynamic int8 layer: int8
    weights per output channel, activations quantised with one scale per tensor at run time."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # Deprecated in favour of torchao, which has no fast kernel for these CPUs (see above).
        warnings.filterwarnings("ignore", "torch.ao.quantization is deprecated")
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor, torch.quantize_per_channel")
        return quantize_dynamic(
            module, {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True
        )


class PatchProjection(torch.nn.Module):
    """A ViT's patch embedding, a convolution whose stride is its kernel, as one linear layer
    over the flattened patches: the same products, but int8 quantisation covers a linear layer,
    and oneDNN's convolution took twice as long as the matrix product for one image (15 against
    7 ms on a Zen 3 EPYC for B/32)."""

    def __init__(self, conv: torch.nn.Conv2d) -> None:
        super().__init__()
        square = conv.kernel_size[0] == conv.kernel_size[1]
        if not square or conv.stride != conv.kernel_size or conv.padding != (0, 0):
            raise ValueError(f"{conv} is not a patch embedding (square, stride = kernel).")
        if conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError(f"{conv} is not a patch embedding (grouped or dilated).")
        self.patch = conv.kernel_size[0]
        self.projection = torch.nn.Linear(
            conv.in_channels * self.patch * self.patch, conv.out_channels, conv.bias is not None
        )
        with torch.no_grad():
            self.projection.weight.copy_(conv.weight.reshape(conv.out_channels, -1))
            if conv.bias is not None:
                self.projection.bias.copy_(conv.bias)
        # CLIPVisionEmbeddings casts the pixels to `patch_embedding.weight.dtype`.
        self.register_buffer("weight", torch.empty(0, dtype=conv.weight.dtype), persistent=False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, D, H / patch, W / patch], as the convolution gives."""
        batch, channels, height, width = pixel_values.shape
        rows, cols, patch = height // self.patch, width // self.patch, self.patch
        patches = (
            pixel_values[:, :, : rows * patch, : cols * patch]
            .reshape(batch, channels, rows, patch, cols, patch)
            .permute(0, 2, 4, 1, 3, 5)
            .reshape(batch, rows * cols, channels * patch * patch)
        )
        return self.projection(patches).transpose(1, 2).reshape(batch, -1, rows, cols)
