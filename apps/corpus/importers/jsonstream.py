"""Streaming readers for the two big JSON shapes of the ArteFact datasets.

``sentences.json`` (one object of 3.1 M entries, ~1 GB) and the embedding id lists (arrays of
3.1 M strings) must never be held whole in memory. The standard library's decoder parses one
value at a time from a buffer (``raw_decode``), so these readers only find the boundaries
between entries and refill the buffer from the file when a value runs past its end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apps.corpus.importers import CorpusSourceError

CHUNK_CHARS = 1 << 20
MAX_ENTRY_CHARS = 64 << 20
"""No single entry is this long: past it, an undecodable value is malformed, not cut short."""
_WHITESPACE = " \t\n\r"


class JsonStreamError(CorpusSourceError):
    """Malformed JSON, with the file and the last entry read in the message."""


class _Reader:
    """A text buffer over a file that knows its position for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open(encoding="utf-8")
        self.buffer = ""
        self.pos = 0
        self.consumed = 0  # characters dropped from the front of the buffer so far
        self.eof = False
        self.last_entry = ""

    def close(self) -> None:
        self.handle.close()

    def fail(self, problem: str) -> JsonStreamError:
        where = f"character {self.consumed + self.pos}"
        after = f" (after entry {self.last_entry!r})" if self.last_entry else ""
        return JsonStreamError(f"{self.path.name}: malformed JSON at {where}{after}: {problem}")

    def _refill(self) -> bool:
        if self.eof:
            return False
        chunk = self.handle.read(CHUNK_CHARS)
        if not chunk:
            self.eof = True
            return False
        self.consumed += self.pos
        self.buffer = self.buffer[self.pos :] + chunk
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-whitespace character, or '' at the end of the file."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._refill():
                return ""

    def expect(self, chars: str) -> str:
        char = self.peek()
        if char == "" or char not in chars:
            found = repr(char) if char else "end of file"
            raise self.fail(f"expected one of {chars!r}, found {found}")
        self.pos += 1
        return char

    def value(self) -> Any:
        """Decode one JSON value, reading more of the file while the value is incomplete."""
        self.peek()
        decoder = json.JSONDecoder()
        while True:
            try:
                value, end = decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                # A value cut by the buffer's end looks malformed too: read on and retry.
                if len(self.buffer) - self.pos < MAX_ENTRY_CHARS and self._refill():
                    continue
                raise self.fail(error.msg) from None
            # A number at the very end of the buffer may continue in the next chunk.
            if end == len(self.buffer) and not self.eof and self._refill():
                continue
            self.pos = end
            return value


def iter_object(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield the (key, value) pairs of a top-level JSON object, one at a time."""
    reader = _Reader(path)
    try:
        reader.expect("{")
        if reader.peek() == "}":
            reader.pos += 1
        else:
            while True:
                key = reader.value()
                if not isinstance(key, str):
                    raise reader.fail("an object key must be a string")
                reader.expect(":")
                value = reader.value()
                reader.last_entry = key
                yield key, value
                if reader.expect(",}") == "}":
                    break
        if reader.peek() != "":
            raise reader.fail("unexpected data after the top-level object")
    finally:
        reader.close()


def iter_array(path: Path) -> Iterator[Any]:
    """Yield the items of a top-level JSON array, one at a time."""
    reader = _Reader(path)
    try:
        reader.expect("[")
        if reader.peek() == "]":
            reader.pos += 1
        else:
            index = 0
            while True:
                item = reader.value()
                reader.last_entry = f"item {index}: {item!r}" if isinstance(item, str) else ""
                yield item
                index += 1
                if reader.expect(",]") == "]":
                    break
        if reader.peek() != "":
            raise reader.fail("unexpected data after the top-level array")
    finally:
        reader.close()


def load_small(path: Path) -> Any:
    """Load a small JSON file whole, with the file named in any error."""
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise JsonStreamError(
            f"{path.name}: malformed JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    except UnicodeDecodeError as error:
        raise JsonStreamError(f"{path.name}: not UTF-8 text ({error.reason})") from None
