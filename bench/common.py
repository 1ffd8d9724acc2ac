"""What the engine benchmarks share: real sentences and images, stand-in models, memory probes.

Model hubs are unreachable here, so the "real-sized" model is a CLIPModel with ViT-B/32's
shape (`CLIPConfig()` defaults) and random weights, plus a random LoRA on the two projections
shaped like PaintingCLIP's (r=16, alpha=32). Speed depends on shapes and token counts, not on
weight values; so that token counts are realistic, its tokenizer is a CLIP-style byte-level BPE
trained on the corpus sample (a tokenizer with a toy vocabulary would split words into
letters and make every sentence hit the 77-token limit).
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import torch
from peft import LoraConfig, get_peft_model
from tokenizers import trainers
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

from apps.engine.config import DEMO_BASE_MODEL, SHARED_DIR

CORPUS_DIR = SHARED_DIR / "corpus-sample" / "marker_output"
ARTWORKS_DIR = SHARED_DIR / "artworks"

_MARKDOWN_NOISE = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), " "),  # images
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links -> their text
    (re.compile(r"<[^>]+>"), " "),  # html tags
    (re.compile(r"[*_`#|>]+"), " "),  # emphasis, headings, tables, quotes
    (re.compile(r"\s+"), " "),
]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9])")


def corpus_sentences() -> list[str]:
    """Sentences of more than 3 words from the corpus-sample Markdown, in file order.

    A deliberately simple regex split (good enough for timing; the corpus importer owns the
    real splitter). Empty when ../shared is absent.
    """
    sentences: list[str] = []
    for path in sorted(CORPUS_DIR.glob("W*/W*.md")):
        for paragraph in path.read_text(encoding="utf-8").split("\n\n"):
            text = paragraph
            for pattern, replacement in _MARKDOWN_NOISE:
                text = pattern.sub(replacement, text)
            sentences.extend(s.strip() for s in _SENTENCE_END.split(text.strip()))
    return [s for s in sentences if len(s.split()) > 3]


def take(sentences: list[str], n: int) -> list[str]:
    """The first n sentences, cycling through the list if it is shorter."""
    if not sentences:
        raise SystemExit(f"No sentences: {CORPUS_DIR} is missing.")
    return [sentences[i % len(sentences)] for i in range(n)]


def artwork_paths() -> list[Path]:
    return sorted(ARTWORKS_DIR.glob("*.jpg"))


def train_tokenizer(sentences: list[str], folder: Path, vocab_size: int = 16_000) -> CLIPTokenizer:
    """A CLIP tokenizer (same normaliser, pre-tokeniser, `</w>` word ends and special tokens)
    whose BPE merges are learnt from `sentences`, saved as vocab.json + merges.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    backend = CLIPTokenizer().backend_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|startoftext|>", "<|endoftext|>"],
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    backend.train_from_iterator(sentences, trainer=trainer)
    backend.model.save(str(folder))
    return CLIPTokenizer.from_pretrained(folder)


def random_vit_b32(
    folder: Path, tokenizer: CLIPTokenizer, seed: int = 0, *, lora: bool = True
) -> tuple[Path, Path | None]:
    """Save a ViT-B/32-shaped CLIP with random weights (and a random projection LoRA shaped like
    PaintingCLIP's) under `folder`; returns (base folder, adapter folder or None)."""
    torch.manual_seed(seed)
    text = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    model = CLIPModel(CLIPConfig(text_config=text))
    base = folder / "clip-vit-b-32-random"
    processor = CLIPProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=tokenizer)
    processor.save_pretrained(base)
    model.save_pretrained(base)
    if not lora:
        return base, None
    adapter = folder / "paintingclip-shaped-lora"
    config = LoraConfig(
        r=16,
        lora_alpha=32,
        target_modules=["text_projection", "visual_projection"],
        init_lora_weights=False,  # random A and B: the adapter really changes the outputs
    )
    get_peft_model(model, config).save_pretrained(adapter)
    return base, adapter


def demo_model() -> tuple[Path, Path | None] | None:
    """The demo CLIP (and its LoRA) that apps/demo ships, when it has been built."""
    if not (DEMO_BASE_MODEL / "config.json").is_file():
        return None
    adapter = DEMO_BASE_MODEL.parent / "paintingclip-lora"
    return DEMO_BASE_MODEL, adapter if (adapter / "adapter_config.json").is_file() else None


@dataclass
class PeakMemory:
    """Peak resident memory (sampled every 5 ms) and peak CUDA allocation during a block."""

    start_rss_mb: float = 0.0
    rss_mb: float = 0.0
    cuda_mb: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)


@contextmanager
def peak_memory(device: str) -> Iterator[PeakMemory]:
    process = psutil.Process()
    rss = process.memory_info().rss / 2**20
    result = PeakMemory(start_rss_mb=rss, rss_mb=rss)

    def sample() -> None:
        while not result._stop.wait(0.005):
            result.rss_mb = max(result.rss_mb, process.memory_info().rss / 2**20)

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        result._stop.set()
        sampler.join()
        result.rss_mb = max(result.rss_mb, process.memory_info().rss / 2**20)
        if device == "cuda":
            torch.cuda.synchronize()
            result.cuda_mb = torch.cuda.max_memory_allocated() / 2**20


def process_peak_rss_mb() -> float:
    """Peak RSS of the whole process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clock(device: str) -> float:
    """Wall-clock seconds, after synchronising CUDA so that queued kernels are counted."""
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def cpu_description() -> str:
    """The CPU as far as it decides CPU results: model name, family and model numbers (the VMs
    report only "AMD EPYC", and its generations differ twofold in bf16 throughput), cores and
    the vector extensions the encoder kernels use."""
    fields: dict[str, str] = {}
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            name, _, value = (part.strip() for part in line.partition(":"))
            if name == "flags":
                flags = set(value.split())
            elif name in {"model name", "cpu family", "model"}:
                fields.setdefault(name, value)
            if not line.strip() and fields:
                break
    extensions = [f for f in ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16") if f in flags]
    name = fields.get("model name") or platform.processor() or platform.machine()
    generation = ""
    if "cpu family" in fields:
        generation = f" (family {fields['cpu family']} model {fields['model']})"
    return f"{name}{generation}, {os.cpu_count()} cores, {' '.join(extensions) or 'no AVX-512'}"


def finish_report(report: dict, out: Path | None) -> None:
    """Add the CPU, the process's peak RSS and the load average, print the report as JSON
    and, with `out`, save it there too."""
    report.setdefault("cpu", cpu_description())
    report["peak_rss_mb"] = round(process_peak_rss_mb())
    report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
