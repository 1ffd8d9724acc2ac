"""A CLIP-format BPE tokenizer trained on the demo vocabulary.

The real CLIP vocabulary has 49,408 entries; the demo's text model only needs the grammar's few
hundred words, and a small vocabulary keeps the embedding table (and the committed weights) small.
The files follow CLIP's layout exactly (byte-level alphabet, the same alphabet with ``</w>``
word ends, merge results in merge order, then the two special tokens), so ``CLIPTokenizer``
reads them like the real ones and never needs an unknown token: every byte is in the vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
EOW = "</w>"
# CLIP's word-splitting pattern, so merges are learned on the same pieces CLIPTokenizer sees.
_CLIP_SPLIT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
    r"""[^\s\p{L}\p{N}]+"""
)


def train_bpe(texts: Iterable[str], vocab_size: int = 1024) -> tuple[dict[str, int], list[str]]:
    """Learn CLIP-style merges on the texts; returns (vocab, merges) in CLIP file order."""
    tok = Tokenizer(BPE(end_of_word_suffix=EOW, continuing_subword_prefix=""))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix=EOW,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    merges = [" ".join(pair) for pair in json.loads(tok.to_str())["model"]["merges"]]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = alphabet + [a + EOW for a in alphabet]
    seen = set(tokens)
    kept: list[str] = []
    for merge in merges:
        merged = merge.replace(" ", "")
        if merged not in seen:
            seen.add(merged)
            tokens.append(merged)
        kept.append(merge)
    tokens += [BOS, EOS]
    return {t: i for i, t in enumerate(tokens)}, kept


def save_clip_tokenizer(out_dir: Path, vocab: dict[str, int], merges: list[str]) -> None:
    """Write ``vocab.json`` and ``merges.txt`` in the layout ``CLIPTokenizer`` expects."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    header = "#version: 0.2\n"
    (out_dir / "merges.txt").write_text(header + "\n".join(merges) + "\n", encoding="utf-8")
