"""Where `embed_texts_multi`'s time goes: the tokenizer and the text encoder, each alone.

On a GPU machine the pipeline is only as fast as the slower of its two stages, so this times,
on the same sentences and ViT-B/32-shaped random CLIP + LoRA as `bench.embed`:

- tokenising every chunk in this process, and in a `TokenizerPool`;
- the text encoder alone, on pre-tokenised batches;
- `embed_texts_multi` for both models with and without the pool.

    python -m bench.embed_stages --device cuda --n 400000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from apps import engine
from apps.engine import embedding, tokenizing
from bench.common import clock, corpus_sentences, random_vit_b32, take, train_tokenizer

KEYS = ("clip", "paintingclip")


def rate(n: int, run: Callable[[], object], device: str, repeats: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeats):
        started = clock(device)
        run()
        seconds.append(clock(device) - started)
    return {
        "sentences_per_s": round(n / statistics.median(seconds)),
        "seconds": [round(s, 2) for s in seconds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--dtype", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    parser.add_argument("--n", type=int, default=400_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, help="pool size (default: the engine's choice)")
    args = parser.parse_args()
    workers = tokenizing.pool_size(args.device) if args.workers is None else args.workers

    sentences = corpus_sentences()
    texts = take(sentences, args.n)
    chunks = embedding._chunks(args.n)
    report: dict[str, object] = {"device": args.device, "n": args.n, "pool_workers": workers}
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
        engine.embed_texts_multi(texts[: args.batch_size], KEYS, registry=registry)  # warm-up

        def tokenise_in_process() -> None:
            for chunk in chunks:
                tokenizing.token_ids(texts[chunk], tokenizer, context)

        def tokenise_in_pool() -> None:
            rust = tokenizing.rust_tokenizer(tokenizer, context)
            with tokenizing.TokenizerPool(rust, max(workers, 1)) as pool:
                for chunk in chunks:
                    pool.token_ids(texts[chunk])

        batches = [
            embedding._Tokens.of(tokenizing.token_ids(texts[c], tokenizer, context), 0)
            for c in chunks
        ]

        def encoder_alone() -> None:
            with torch.inference_mode():
                for tokens in batches:
                    for start in range(0, len(tokens), args.batch_size):
                        rows = tokens.order[start : start + args.batch_size]
                        input_ids = embedding._to_device(tokens.batch(rows), model.device)
                        model.clip.text_model(input_ids=input_ids)

        stages: dict[str, Callable[[], object]] = {
            "tokenise_in_process": tokenise_in_process,
            "tokenise_in_pool": tokenise_in_pool,
            "encoder_alone": encoder_alone,
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
        for name, run in stages.items():
            report[name] = rate(args.n, run, args.device, args.repeats)
            print(f"{name:22s} {report[name]['sentences_per_s']:>9,} sentences/s", flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
