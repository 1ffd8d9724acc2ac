"""Where `embed_texts_multi`'s time goes: the tokenizer and the text encoder, each alone.

On a GPU machine the pipeline is only as fast as the slower of its two stages, so this times,
on the same sentences and ViT-B/32-shaped random CLIP + LoRA as `bench.embed`:

- tokenising every chunk in this process, and in a `TokenizerPool`;
- the text encoder alone, on pre-tokenised batches;
- `embed_texts_multi` for both models with and without the pool;
- optionally (`--batch-sizes`) the encoder alone at several batch sizes, and (`--int8`) a copy
  of the encoder with PyTorch's dynamic int8 quantisation (the deprecated `torch.ao` API, kept
  as a reference; the engine's own `MODEL_DTYPE=int8` uses torchao and is timed by
  `bench.embed --also-dtype int8`), with its cosine to the unquantised embeddings.

    python -m bench.embed_stages --device cuda --n 400000
    python -m bench.embed_stages --device cpu --dtype fp32 --n 512 --repeats 3 \
        --batch-sizes 8,16,32,64,128,256 --int8 --stages encoder
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from apps import engine
from apps.engine import embedding, tokenizing
from bench.common import (
    clock,
    corpus_sentences,
    cpu_description,
    random_vit_b32,
    take,
    train_tokenizer,
)

KEYS = ("clip", "paintingclip")


def rate(n: int, run: Callable[[], Any], device: str, repeats: int) -> tuple[dict, Any]:
    """Rate over `repeats` timed runs after a warm-up, and the last run's result."""
    run()
    seconds = []
    for _ in range(repeats):
        started = clock(device)
        result = run()
        seconds.append(clock(device) - started)
    report = {
        "sentences_per_s": round(n / statistics.median(seconds)),
        "seconds": [round(s, 2) for s in seconds],
    }
    return report, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--dtype", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    parser.add_argument("--n", type=int, default=400_000)
    parser.add_argument("--batch-size", type=int, help="default: the engine's for the device")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, help="pool size (default: the engine's choice)")
    parser.add_argument("--batch-sizes", help="comma list: also time the encoder alone at these")
    parser.add_argument("--int8", action="store_true", help="also time a dynamic-int8 encoder")
    parser.add_argument(
        "--stages", choices=["all", "encoder"], default="all", help="encoder: skip the pipeline"
    )
    args = parser.parse_args()
    if args.int8 and args.device != "cpu":
        parser.error("--int8 runs PyTorch's CPU-only dynamic quantisation: use --device cpu")
    workers = tokenizing.pool_size(args.device) if args.workers is None else args.workers
    args.batch_size = args.batch_size or engine.default_batch_size(torch.device(args.device))

    sentences = corpus_sentences()
    texts = take(sentences, args.n)
    chunks = embedding._chunks(args.n)
    report: dict[str, Any] = {
        "device": args.device,
        "dtype": args.dtype,
        "n": args.n,
        "pool_workers": workers,
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_description(),
    }
    with tempfile.TemporaryDirectory() as scratch:
        base, adapter = random_vit_b32(
            Path(scratch), train_tokenizer(sentences, Path(scratch) / "tokenizer")
        )
        registry = engine.ModelRegistry(
            [
                engine.ModelSpec("clip", str(base)),
                engine.ModelSpec("paintingclip", str(base), str(adapter)),
            ],
            device=args.device,
            dtype=args.dtype,
        )
        model = registry.get("clip")
        tokenizer, context = model.tokenizer, model.max_text_length

        def tokenise_in_process() -> None:
            for chunk in chunks:
                tokenizing.token_ids(texts[chunk], tokenizer, context)

        def tokenise_in_pool() -> None:
            rust = tokenizing.rust_tokenizer(tokenizer, context)
            with tokenizing.TokenizerPool(rust, max(workers, 1)) as pool:
                for chunk in chunks:
                    pool.token_ids(texts[chunk])

        batches = [
            embedding._Tokens.of(
                tokenizing.token_ids(texts[c], tokenizer, context), tokenizer.pad_token_id
            )
            for c in chunks
        ]

        def encoder_alone(text_model: torch.nn.Module, batch_size: int) -> torch.Tensor:
            # Kept on the device: a copy to the host per batch would stall the GPU every batch.
            pooled = torch.empty(
                args.n, model.clip.config.text_config.hidden_size, device=model.device
            )
            with torch.inference_mode():
                for tokens, chunk in zip(batches, chunks, strict=True):
                    for start in range(0, len(tokens), batch_size):
                        rows = tokens.order[start : start + batch_size]
                        input_ids = embedding._to_device(tokens.batch(rows), model.device)
                        output = text_model(input_ids=input_ids).pooler_output
                        where = torch.from_numpy(chunk.start + rows).to(model.device)
                        pooled[where] = output.float()
            return pooled.cpu()

        sizes = [int(v) for v in args.batch_sizes.split(",")] if args.batch_sizes else []
        stages: dict[str, Callable[[], object]] = {
            **{
                f"encoder_alone_batch_{size}": lambda size=size: encoder_alone(
                    model.clip.text_model, size
                )
                for size in dict.fromkeys([args.batch_size, *sizes])
            },
        }
        if args.int8:
            int8_encoder = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(model.clip.text_model).float(), {torch.nn.Linear}, dtype=torch.qint8
            )
            stages |= {
                f"int8_encoder_alone_batch_{size}": lambda size=size: encoder_alone(
                    int8_encoder, size
                )
                for size in dict.fromkeys([args.batch_size, *sizes])
            }
        if args.stages == "all":
            stages |= {
                "tokenise_in_process": tokenise_in_process,
                "tokenise_in_pool": tokenise_in_pool,
                "engine_multi_no_pool": lambda: engine.embed_texts_multi(
                    texts, KEYS, registry=registry, batch_size=args.batch_size, tokenizer_workers=0
                ),
                "engine_multi_pool": lambda: engine.embed_texts_multi(
                    texts,
                    KEYS,
                    registry=registry,
                    batch_size=args.batch_size,
                    tokenizer_workers=workers,
                ),
            }
        results = {}
        for name, run in stages.items():
            report[name], results[name] = rate(args.n, run, args.device, args.repeats)
            print(f"{name:30s} {report[name]['sentences_per_s']:>9,} sentences/s", flush=True)
        if args.int8:
            projection = model.clip.text_projection.float().cpu()
            with torch.inference_mode():
                plain, int8 = (
                    F.normalize(projection(results[stage]), dim=-1)
                    for stage in (
                        f"encoder_alone_batch_{args.batch_size}",
                        f"int8_encoder_alone_batch_{args.batch_size}",
                    )
                )
            cosine = (plain * int8).sum(-1)
            report["int8_cosine_to_unquantised"] = {
                "min": round(cosine.min().item(), 5),
                "mean": round(cosine.mean().item(), 5),
            }
            print(f"int8 cosine to unquantised: {report['int8_cosine_to_unquantised']}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
