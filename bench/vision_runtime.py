"""The vision pass of image retrieval in torch and in ONNX Runtime, fp32 and int8.

    pip install --target /tmp/ortpkgs onnxruntime onnx      # not a project dependency (yet)
    ORT_PACKAGES=/tmp/ortpkgs python bench/vision_runtime.py [--repeats 3] [--out FILE]

A measurement for choosing the next runtime of the worker's vision pass, not a product path.
It builds the random ViT-B/32 of `bench/common.py`, loads it through the engine in fp32 and
with `MODEL_DTYPE=int8` (the kernels `choose_int8_kernels` picks for this CPU), exports the
same `VisionTokens` module (class token + patch tokens in the joint space) to ONNX, quantises
that with ONNX Runtime's dynamic int8 (per-channel weights), and times one 224 x 224 image
through each, interleaved, 10 passes per repeat; two threads everywhere. Also reported: the
smallest cosine over the 50 output tokens to torch fp32's.

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
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from apps import engine  # noqa: E402
from apps.engine.quantization import VisionTokens, choose_int8_kernels  # noqa: E402
from bench.common import corpus_sentences, finish_report, random_vit_b32, train_tokenizer  # noqa: E402


def smallest_cosine(reference: np.ndarray, other: np.ndarray) -> float:
    reference = reference / np.linalg.norm(reference, axis=-1, keepdims=True)
    other = other / np.linalg.norm(other, axis=-1, keepdims=True)
    return round(float((reference * other).sum(-1).min()), 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if os.environ.get("ORT_PACKAGES"):
        sys.path.append(os.environ["ORT_PACKAGES"])
    try:
        import onnxruntime
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise SystemExit(
            "bench/vision_runtime.py needs onnxruntime and onnx: pip install --target DIR "
            "onnxruntime onnx, then set ORT_PACKAGES=DIR."
        ) from None

    torch.set_num_threads(2)
    scratch = Path(tempfile.mkdtemp(prefix="artefact-vision-runtime-"))
    tokenizer = train_tokenizer(corpus_sentences()[:5000], scratch / "tokenizer", 4000)
    base, _ = random_vit_b32(scratch, tokenizer, lora=False)
    specs = [engine.ModelSpec("clip", str(base))]
    fp32 = engine.ModelRegistry(specs, device="cpu", dtype="fp32")
    int8 = engine.ModelRegistry(specs, device="cpu", dtype="int8")
    clip = fp32.get("clip").clip
    module = VisionTokens(clip.vision_model, clip.visual_projection).eval()
    pixels = torch.randn(1, 3, 224, 224)

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
    feed = {"pixel_values": pixels.numpy()}
    int8_run = int8.get("clip").vision_encoder.run
    passes = {
        "torch_fp32": lambda: module(pixels).numpy()[0],
        f"torch_int8_{int8.int8_kernels}": lambda: int8_run(pixels).numpy()[0],
        "ort_fp32": lambda: sessions["ort_fp32"].run(None, feed)[0][0],
        "ort_int8": lambda: sessions["ort_int8"].run(None, feed)[0][0],
    }
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
            "int8_kernels": choose_int8_kernels(),
            "onnxruntime": onnxruntime.__version__,
            "export_s": round(export_s, 1),
            "quantise_s": round(quantise_s, 1),
            "median_ms_per_repeat": medians,
            "smallest_token_cosine_to_torch_fp32": cosines,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
