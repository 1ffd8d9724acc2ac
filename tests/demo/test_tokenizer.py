"""The demo tokenizer is a CLIP-format BPE that CLIPTokenizer reads and round-trips."""

import random

import pytest
from transformers import CLIPTokenizer

from apps.demo.grammar import distractor_sentence, object_sentence, vocabulary_texts
from apps.demo.scenes import generate_scene
from apps.demo.tokenizer import BOS, EOS, EOW, save_clip_tokenizer, train_bpe


def _sentences(count: int) -> list[str]:
    rng = random.Random(5)
    out = []
    for seed in range(count):
        facts = generate_scene(seed).facts()
        out += [object_sentence(o, facts, rng) for o in facts.objects]
        out.append(distractor_sentence(rng))
    return out


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab, merges = train_bpe(vocabulary_texts() + _sentences(100), vocab_size=600)
    folder = tmp_path_factory.mktemp("tok")
    save_clip_tokenizer(folder, vocab, merges)
    assert sorted(p.name for p in folder.iterdir()) == ["merges.txt", "vocab.json"]
    return CLIPTokenizer.from_pretrained(folder)


def test_clip_layout(tokenizer):
    vocab = tokenizer.get_vocab()
    assert vocab[BOS] == len(vocab) - 2
    assert vocab[EOS] == len(vocab) - 1
    by_id = sorted(vocab, key=vocab.get)
    assert all(vocab[token + EOW] == i + 256 for i, token in enumerate(by_id[:256]))
    assert any(token.endswith(EOW) and len(token) > 8 for token in vocab)  # merged whole words


def test_round_trip_without_unknown_tokens(tokenizer):
    for sentence in [*_sentences(60), "Zyzzyva! Ünïcode — 42."]:
        ids = tokenizer(sentence)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.eos_token_id not in ids[1:-1]  # the unknown token is end-of-text
        decoded = tokenizer.decode(ids, skip_special_tokens=True)
        assert decoded.replace(" ", "") == sentence.lower().replace(" ", "")


def test_common_words_are_single_tokens(tokenizer):
    tokens = tokenizer.tokenize("the red boat in the lower left")
    assert tokens == [
        "the</w>",
        "red</w>",
        "boat</w>",
        "in</w>",
        "the</w>",
        "lower</w>",
        "left</w>",
    ]
