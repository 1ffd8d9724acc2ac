"""Sentence-embedding throughput: the engine against the two patterns ArteFact used upstream.

Both models (plain CLIP and CLIP + a PaintingCLIP-shaped LoRA) embed the same sentences in the
same run; a rate is sentences per second with BOTH models done.

- engine multi:    `embed_texts_multi(texts, ["clip", "paintingclip"])` (shared text encoder)
- engine separate: `embed_texts` once per model
- upstream (b), the HPC run: batches of 1,024 in file order, each padded to its longest
  sentence, fp32, one model after the other (the LoRA model left as an unmerged PeftModel)
- upstream (a), the local script: one sentence per call, model by model, one .pt file written
  per sentence and model (slow: run on `--n-single` sentences, reported per sentence)

Models: a ViT-B/32-shaped CLIP with random weights + a random projection LoRA (r=16, alpha=32),
and the demo model from apps/demo when it has been built. Sentences: the corpus sample in
../shared, split with a regex.

    python -m bench.embed --device cpu --n 2000 --n-single 100 --repeats 3
    python -m bench.embed --device cpu --dtype fp32 --also-dtype bf16 --also-dtype int8 --n 1000
    python -m bench.embed --device cuda --n 200000 --n-single 200 --batch-size 4096 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import CLIPModel, CLIPProcessor

from apps import engine
from bench.common import (
    clock,
    corpus_sentences,
    cpu_description,
    demo_model,
    peak_memory,
    process_peak_rss_mb,
    random_vit_b32,
    take,
    train_tokenizer,
)

KEYS = ("clip", "paintingclip")
UPSTREAM_BATCH = 1024


def load_upstream(base: Path, adapter: Path | None, device: str) -> dict[str, tuple]:
    """The models as the upstream scripts held them: fp32, the adapter as a PeftModel."""
    models = {}
    for key in KEYS:
        model = CLIPModel.from_pretrained(base)
        if key == "paintingclip" and adapter is not None:
            model = PeftModel.from_pretrained(model, adapter)
        models[key] = (model.to(device).eval(), CLIPProcessor.from_pretrained(base))
    return models


def upstream_batched(texts: list[str], models: dict[str, tuple], device: str) -> dict:
    out = {}
    for key, (model, processor) in models.items():
        parts = []
        for start in range(0, len(texts), UPSTREAM_BATCH):
            inputs = processor(
                text=texts[start : start + UPSTREAM_BATCH],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=77,
            ).to(device)
            with torch.no_grad():
                features = model.get_text_features(**inputs).pooler_output
            parts.append(F.normalize(features, dim=-1).cpu())
        out[key] = torch.cat(parts).numpy()
    return out


def upstream_single(texts: list[str], models: dict[str, tuple], device: str, folder: Path) -> None:
    for index, text in enumerate(texts):
        for key, (model, processor) in models.items():
            inputs = processor(
                text=[text], return_tensors="pt", padding=True, truncation=True, max_length=77
            ).to(device)
            with torch.no_grad():
                features = model.get_text_features(**inputs).pooler_output
            embedding = (features / features.norm(dim=-1, keepdim=True)).cpu()
            torch.save(embedding, folder / f"s{index:06d}_{key}.pt")


def mean_tokens(tokenizer: Any, texts: list[str]) -> float:
    ids = tokenizer(texts[:5000], truncation=True, max_length=77)["input_ids"]
    return round(float(np.mean([len(sentence) for sentence in ids])), 1)


def bench_model_set(
    name: str, base: Path, adapter: Path | None, texts: list[str], args: argparse.Namespace
) -> dict:
    """Time every pattern on the same sentences; the repeats interleave the patterns so that
    load from other processes on a shared machine hits them all alike."""

    def registry_in(dtype: str) -> engine.ModelRegistry:
        return engine.ModelRegistry(
            [
                engine.ModelSpec("clip", str(base)),
                engine.ModelSpec("paintingclip", str(base), str(adapter) if adapter else None),
            ],
            device=args.device,
            dtype=dtype,
            compile_text_from=0,  # int8: compiled as for an import, during the warm-up
        )

    registry = registry_in(args.dtype)
    options = {
        "batch_size": args.batch_size,
        "registry": registry,
        "amp": args.amp,
        "progress": len(texts) >= 50_000,
    }
    other_options = {
        dtype: {**options, "registry": registry_in(dtype)} for dtype in args.also_dtype
    }
    upstream = load_upstream(base, adapter, args.device)
    n, n_single = len(texts), min(args.n_single, len(texts))
    scratch = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    phases: dict[str, tuple[int, Callable[[list[str]], Any]]] = {
        "engine_multi": (n, lambda t: engine.embed_texts_multi(t, KEYS, **options)),
        "engine_separate": (n, lambda t: {k: engine.embed_texts(t, k, **options) for k in KEYS}),
        **{
            f"engine_multi_{dtype}": (
                n,
                lambda t, dtype=dtype: engine.embed_texts_multi(t, KEYS, **other_options[dtype]),
            )
            for dtype in args.also_dtype
        },
        "upstream_b_batched": (n, lambda t: upstream_batched(t, upstream, args.device)),
        "upstream_a_single": (
            n_single,
            lambda t: upstream_single(t, upstream, args.device, scratch),
        ),
    }
    warm_up_s = {}
    for phase, (count, run) in phases.items():  # load lazily, fill caches, pick kernels, compile
        started = time.perf_counter()
        run(texts[: min(count, 64)])
        warm_up_s[phase] = round(time.perf_counter() - started, 1)

    seconds: dict[str, list[float]] = {phase: [] for phase in phases}
    memory: dict[str, list] = {phase: [] for phase in phases}
    outputs: dict[str, Any] = {}
    for _ in tqdm(range(args.repeats), desc=name, leave=False):
        for phase, (count, run) in phases.items():
            with peak_memory(args.device) as peak:
                started = clock(args.device)
                outputs[phase] = run(texts[:count])
                seconds[phase].append(clock(args.device) - started)
            memory[phase].append(peak)
    shutil.rmtree(scratch)

    report: dict[str, Any] = {
        "model": name,
        "dtype": str(registry.dtype).removeprefix("torch."),
        "n": n,
        "n_single": n_single,
        "mean_tokens": mean_tokens(registry.get("clip").tokenizer, texts),
    }
    for phase, (count, _) in phases.items():
        median = statistics.median(seconds[phase])
        report[phase] = {
            "seconds": [round(s, 3) for s in seconds[phase]],
            "median_s": round(median, 3),
            "sentences_per_s": round(count / median, 1),
            "warm_up_s": warm_up_s[phase],
            "peak_rss_mb": round(max(m.rss_mb for m in memory[phase])),
            "rss_growth_mb": round(max(m.rss_mb - m.start_rss_mb for m in memory[phase])),
            "cuda_peak_mb": None
            if args.device != "cuda"
            else round(max(m.cuda_mb for m in memory[phase])),
        }
    for phase in [p for p in phases if p.startswith("engine_multi")]:
        suffix = phase.removeprefix("engine_multi")
        multi = report[phase]["sentences_per_s"]
        for pattern in ("a_single", "b_batched"):
            rate = report[f"upstream_{pattern}"]["sentences_per_s"]
            report[f"multi{suffix}_vs_{pattern[0]}"] = round(multi / rate, 2)
    report["min_cosine_to_engine_multi"] = {
        phase: round(
            min(
                float((outputs[phase][key] * outputs["engine_multi"][key]).sum(axis=1).min())
                for key in KEYS
            ),
            6,
        )
        for phase in phases
        if phase.startswith("engine_multi_")
    }
    report["max_abs_diff_vs_b"] = {
        key: float(np.abs(outputs["engine_multi"][key] - outputs["upstream_b_batched"][key]).max())
        for key in KEYS
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["auto", "fp32", "fp16", "bf16", "int8"], default="auto")
    parser.add_argument("--amp", action="store_true", help="autocast the engine (fp32 weights)")
    parser.add_argument(
        "--also-dtype",
        choices=["fp32", "fp16", "bf16", "int8"],
        action="append",
        default=[],
        help="also time engine multi in this dtype, in the same run (repeatable)",
    )
    parser.add_argument("--n", type=int, default=2000, help="sentences for the batched runs")
    parser.add_argument("--n-single", type=int, default=100, help="sentences for pattern (a)")
    parser.add_argument("--batch-size", type=int, help="engine batch (default: the engine's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="random,demo", help="random, demo or both")
    parser.add_argument("--json", action="store_true", help="print the report as JSON last")
    args = parser.parse_args()
    args.batch_size = args.batch_size or engine.default_batch_size(torch.device(args.device))

    load_before = [round(v, 2) for v in os.getloadavg()]
    sentences = corpus_sentences()
    texts = take(sentences, args.n)
    reports = []
    with tempfile.TemporaryDirectory() as scratch:
        sets: list[tuple[str, Path, Path | None]] = []
        if "random" in args.models:
            tokenizer = train_tokenizer(sentences, Path(scratch) / "tokenizer")
            base, adapter = random_vit_b32(Path(scratch), tokenizer)
            sets.append(("vit-b-32-shaped random + random LoRA", base, adapter))
        demo = demo_model()
        if "demo" in args.models and demo is not None:
            sets.append(("demo model (apps/demo)", *demo))
        for name, base, adapter in sets:
            reports.append(bench_model_set(name, base, adapter, texts, args))

    summary = {
        "device": args.device,
        "cpu": cpu_description(),
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "process_peak_rss_mb": round(process_peak_rss_mb()),
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "results": reports,
    }
    print(f"load average before/after: {load_before} / {summary['load_average_after']}")
    for report in reports:
        print(f"\n{report['model']} ({report['dtype']}, {report['mean_tokens']} tokens/sentence)")
        for phase in [p for p in report if isinstance(report[p], dict) and "median_s" in report[p]]:
            row = report[phase]
            print(
                f"  {phase:20s} {row['sentences_per_s']:>10.1f} sentences/s (both models)"
                f"  median {row['median_s']:.2f} s  peak RSS {row['peak_rss_mb']} MB"
                f" (+{row['rss_growth_mb']} MB)"
                + (f"  CUDA {row['cuda_peak_mb']} MB" if row["cuda_peak_mb"] is not None else "")
            )
        for name in [key for key in report if key.startswith("multi") and "_vs_" in key]:
            print(f"  {name}: {report[name]}x")
        print(f"  max |engine - upstream (b)|: {report['max_abs_diff_vs_b']}")
        print(f"  min cosine to engine multi: {report['min_cosine_to_engine_multi']}")
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
