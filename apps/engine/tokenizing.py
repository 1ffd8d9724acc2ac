"""Token ids for many sentences, fast enough to keep a GPU busy.

On an H200 machine the B/32 text encoder alone embeds about 78,000 sentences a second, while
tokenising in the embedding process managed 47,000-66,000 a second and took the GIL from the
thread that launches the GPU's work. Two remedies live here:

- the model's Rust tokenizer is called directly (`encode_batch_fast`), skipping the per-sentence
  Python conversions of `PreTrainedTokenizer.__call__`, which cost more than the tokenising;
- `TokenizerPool` tokenises in worker processes, which return flat numpy arrays, so the
  embedding process only copies buffers. It pays off on machines with many cores feeding a GPU;
  on a small CPU-only machine the encoder is thousands of times slower than the tokenizer and
  the pool would only take cores from it.

The ids are exactly those of `tokenizer(texts, truncation=True, max_length=context)`.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import warnings
import weakref
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

TokenIds = tuple[np.ndarray, np.ndarray]
"""(flat ids of all sentences one after the other, each sentence's length), both int64."""

_RUST_COPIES: weakref.WeakKeyDictionary[PreTrainedTokenizerBase, Tokenizer] = (
    weakref.WeakKeyDictionary()
)


def token_ids(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, context: int) -> TokenIds:
    """Token ids of `texts`, truncated at `context` tokens, unpadded, in this process."""
    rust = rust_tokenizer(tokenizer, context)
    if rust is None:
        ids = tokenizer(
            list(texts),
            truncation=True,
            max_length=context,
            padding=False,
            return_attention_mask=False,
        )["input_ids"]
    else:
        ids = [encoding.ids for encoding in rust.encode_batch_fast(list(texts))]
    return _flatten(ids)


def rust_tokenizer(tokenizer: PreTrainedTokenizerBase, context: int) -> Tokenizer | None:
    """A private copy of `tokenizer`'s Rust tokenizer that truncates at `context` and never
    pads (a copy, because every `__call__` of the shared one reconfigures it); None for a
    tokenizer without a Rust backend."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, Tokenizer):
        return None
    rust = _RUST_COPIES.get(tokenizer)
    if rust is None or rust.truncation["max_length"] != context:
        rust = Tokenizer.from_str(backend.to_str())
        rust.no_padding()
        rust.enable_truncation(context)
        _RUST_COPIES[tokenizer] = rust
    return rust


def pool_size(device_type: str) -> int:
    """Worker processes worth starting to feed a model on `device_type`: none on a CPU (the
    encoder needs every core) or with fewer than 8 cores, else all cores but two (the process
    that drives the GPU and its helper thread)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if device_type == "cpu" or (cores or 1) < 8:
        return 0
    return min(cores - 2, 16)


class TokenizerPool:
    """Worker processes that tokenise pieces of a chunk in parallel. Use as a context manager.

    Workers are forked where the platform can (a fork costs milliseconds; a spawned worker
    would spend seconds importing torch through this package, stalling the GPU it feeds), all
    at once when the pool is made. Forking a process that holds CUDA state and threads is safe
    here for the reason it is safe in PyTorch's DataLoader workers: the children run only the
    Rust tokenizer and numpy, never CUDA, OpenMP or the parent's other threads' locks.
    """

    def __init__(self, tokenizer: Tokenizer, workers: int) -> None:
        self.workers = workers
        methods = multiprocessing.get_all_start_methods()
        # Keeps the parent's parallel tokenizing as it was, and tells the `tokenizers` fork
        # hook that the children's setting (off, below) is deliberate, so it stays silent.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork" if "fork" in methods else "spawn"),
            initializer=_start_worker,
            initargs=(tokenizer.to_str(),),
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "This process .* is multi-threaded")
            self._executor.submit(int).result()  # starts every worker now

    def __enter__(self) -> TokenizerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._executor.shutdown(cancel_futures=True)

    def token_ids(self, texts: Sequence[str]) -> TokenIds:
        step = max(1, -(-len(texts) // (2 * self.workers)))
        pieces = [list(texts[start : start + step]) for start in range(0, len(texts), step)]
        results = list(self._executor.map(_encode_piece, pieces))
        if not results:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        flats, lengths = zip(*results, strict=True)
        return np.concatenate(flats).astype(np.int64), np.concatenate(lengths).astype(np.int64)


_worker_tokenizer: Tokenizer | None = None


def _start_worker(serialised: str) -> None:
    global _worker_tokenizer
    # One process per core already: Rust's own thread pool would only oversubscribe them.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker_tokenizer = Tokenizer.from_str(serialised)


def _encode_piece(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    assert _worker_tokenizer is not None, "the pool's initializer did not run"
    flat, lengths = _flatten([e.ids for e in _worker_tokenizer.encode_batch_fast(texts)])
    return flat.astype(np.int32), lengths.astype(np.int32)


def _flatten(ids: list[list[int]]) -> TokenIds:
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=lengths.sum())
    return flat, lengths
