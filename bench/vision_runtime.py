"""The vision pass of image retrieval in each torch path this CPU offers, and in ONNX Runtime.

    python bench/vision_runtime.py [--repeats 3] [--out FILE]
    pip install --target /tmp/ortpkgs onnxruntime onnx      # not a project dependency
    ORT_PACKAGES=/tmp/ortpkgs python bench/vision_runtime.py [--repeats 3] [--out FILE]

A measurement for choosing the worker's vision runtime and kernels, not a product path. It
builds the random ViT-B/32 of `bench/common.py` and loads it through the engine in fp32, with
`MODEL_DTYPE=int8` under each set of int8 kernels (`MODEL_INT8_KERNELS`; torchao's copy is
compiled on its first image, untimed), and in bf16 where the CPU has native bf16. With
onnxruntime importable it also exports the same `VisionTokens` module (class token + patch
tokens in the joint space) to ONNX and quantises that with ONNX Runtime's dynamic int8
(per-channel weights). One 224 x 224 image goes through each, interleaved, 10 passes per
repeat; two threads everywhere. Also reported: the smallest cosine over the 50 output tokens
to torch fp32's.

`ORT_PACKAGES` names a folder installed with `pip install --target`; it is appended to
`sys.path`, so its copies of numpy and the like do not shadow the project's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from apps import engine  # noqa: E402
from apps.engine.config import INT8_KERNELS  # noqa: E402
from apps.engine.quantization import VisionTokens, choose_int8_kernels  # noqa: E402
from bench.common import corpus_sentences, finish_report, random_vit_b32, train_tokenizer  # noqa: E402


def smallest_cosine(reference: np.ndarray, other: np.ndarray) -> float:
    reference = reference / np.linalg.norm(reference, axis=-1, keepdims=True)
    other = other / np.linalg.norm(other, axis=-1, keepdims=True)
    return round(float((reference * other).sum(-1).min()), 6)


def usable_int8_kernels() -> list[str]:
    """torchao's kernels run anywhere; fbgemm's need its quantized engine (x86)."""
    engines = torch.backends.quantized.supported_engines
    return [kernels for kernels in INT8_KERNELS if kernels != "fbgemm" or "fbgemm" in engines]


def native_bf16() -> bool:
    capabilities = torch.cpu.get_capabilities()
    return any(capabilities.get(flag) for flag in ("avx512_bf16", "amx_bf16"))


def first_tokens(model: engine.LoadedModel, pixels: torch.Tensor) -> np.ndarray:
    return model.vision_encoder.run(pixels).float().numpy()[0]


def first_output(session: Any, feed: dict[str, np.ndarray]) -> np.ndarray:
    return session.run(None, feed)[0][0]


def onnx_runtime_sessions(
    onnxruntime: Any, module: torch.nn.Module, pixels: torch.Tensor, scratch: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The module exported to ONNX, as is and dynamically quantised, with the time each took."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exported, quantised = scratch / "vision.onnx", scratch / "vision-int8.onnx"
    started = time.perf_counter()
    torch.onnx.export(module, (pixels,), str(exported), dynamo=False, input_names=["pixel_values"])
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    quantize_dynamic(str(exported), str(quantised), weight_type=QuantType.QInt8, per_channel=True)
    quantise_s = time.perf_counter() - started
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    sessions = {
        name: onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for name, path in (("ort_fp32", exported), ("ort_int8", quantised))
    }
    report = {
        "onnxruntime": onnxruntime.__version__,
        "export_s": round(export_s, 1),
        "quantise_s": round(quantise_s, 1),
    }
    return sessions, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if os.environ.get("ORT_PACKAGES"):
        sys.path.append(os.environ["ORT_PACKAGES"])
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
        print(
            "onnxruntime is not importable: timing torch only (pip install --target DIR "
            "onnxruntime onnx, then set ORT_PACKAGES=DIR).",
            file=sys.stderr,
        )

    torch.set_num_threads(2)
    scratch = Path(tempfile.mkdtemp(prefix="artefact-vision-runtime-"))
    tokenizer = train_tokenizer(corpus_sentences()[:5000], scratch / "tokenizer", 4000)
    base, _ = random_vit_b32(scratch, tokenizer, lora=False)
    specs = [engine.ModelSpec("clip", str(base))]
    fp32 = engine.ModelRegistry(specs, device="cpu", dtype="fp32")
    clip = fp32.get("clip").clip
    module = VisionTokens(clip.vision_model, clip.visual_projection).eval()
    pixels = torch.randn(1, 3, 224, 224)
    passes = {"torch_fp32": lambda: module(pixels).numpy()[0]}
    for kernels in usable_int8_kernels():
        int8 = engine.ModelRegistry(specs, device="cpu", dtype="int8", int8_kernels=kernels)
        passes[f"torch_int8_{kernels}"] = partial(first_tokens, int8.get("clip"), pixels)
    if native_bf16():
        bf16 = engine.ModelRegistry(specs, device="cpu", dtype="bf16").get("clip")
        passes["torch_bf16"] = partial(first_tokens, bf16, pixels.to(torch.bfloat16))
    ort_report = {}
    if onnxruntime is not None:
        ort_sessions, ort_report = onnx_runtime_sessions(onnxruntime, module, pixels, scratch)
        feed = {"pixel_values": pixels.numpy()}
        for name, session in ort_sessions.items():
            passes[name] = partial(first_output, session, feed)
    medians: dict[str, list[float]] = {name: [] for name in passes}
    with torch.inference_mode():
        reference = passes["torch_fp32"]()
        cosines = {name: smallest_cosine(reference, run()) for name, run in passes.items()}
        for _ in range(args.repeats):
            for name, run in passes.items():
                samples = []
                for _ in range(10):
                    started = time.perf_counter()
                    run()
                    samples.append((time.perf_counter() - started) * 1000)
                medians[name].append(round(statistics.median(samples), 1))
    finish_report(
        {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "torch_threads": torch.get_num_threads(),
            "int8_kernels_chosen": choose_int8_kernels(),
            **ort_report,
            "median_ms_per_repeat": medians,
            "smallest_token_cosine_to_torch_fp32": cosines,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
