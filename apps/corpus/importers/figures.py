"""A figure's caption and the paragraph that cites it, read from its work's Markdown.

Marker's Markdown puts a figure as an image-only block, ``![…](name)``, usually followed by its
caption ("Fig. 3. John Martin, *The Deluge*, 1834."); the text refers to it by number ("as in
fig. 3", "(Plate 2)"). The rules, applied to the blocks between blank lines
(`sentences.paragraphs_of`'s blocks, cleaned the same way by `sentences.clean_block`):

* **caption**: the text on the image's own line after the link, if any (``![](a.png) Fig. 1 …``);
  else the first block after the image block when it is prose and at most
  :data:`MAX_CAPTION_CHARS` long (a caption is short; a long block is body text that happens to
  follow the figure). No caption when the next block is a heading, another image or long.
* **figure number**: the number after "Fig."/"Figure"/"Plate"/"Pl." at the start of the caption;
  else in the heading right before the image block (``## Plate 2: …``, the demo corpus's
  plates); else none.
* **citation** (the paragraph that cites it): the first prose block of the work, other than the
  caption, whose text names that number ("fig. 3", "Figs. 2 and 3", "Plate 3", "pl. 3");
  without a number or a naming block, the first prose block after the image and its caption
  (the text the figure illustrates, since marker places a figure where the PDF's page had it).
  The text is the cleaned block (links, emphasis, tags removed), not the joined paragraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apps.corpus.importers.sentences import _BLOCK_BREAK, _IMAGE, clean_block

MAX_CAPTION_CHARS = 400
_HEADING = re.compile(r"\s*#")
_FIGURE_WORD = r"(?:fig(?:ure)?s?\.?|plates?|pls?\.)"
_LEADING_NUMBER = re.compile(rf"^\W*{_FIGURE_WORD}\s*(\d+)", re.IGNORECASE)
_HEADING_NUMBER = re.compile(rf"^\s*#+\s*{_FIGURE_WORD}\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class FigureText:
    """What the Markdown says about one figure: both '' when it says nothing."""

    caption: str = ""
    citation: str = ""


def _names_number(text: str, number: str) -> bool:
    """Whether `text` refers to figure `number`: "fig. 3", "Figure 3", "figs. 2 and 3",
    "Figs. 2–3" (a range naming its ends), "Plate 3", "pl. 3"; "fig. 30" does not name 3."""
    for match in re.finditer(
        rf"\b{_FIGURE_WORD}\s*((?:\d+[a-z]?(?:\s*(?:,|and|&|-|–|to)\s*)?)+)",
        text,
        re.IGNORECASE,
    ):
        if number in re.findall(r"\d+", match.group(1)):
            return True
    return False


def figure_texts(markdown: str) -> dict[str, FigureText]:
    """Caption and citing paragraph of each image the Markdown links, by file name (the first
    link of a name counts). Pure and linear in the text: the importer calls it per work."""
    blocks = _BLOCK_BREAK.split(markdown)
    prose = [clean_block(block) for block in blocks]
    result: dict[str, FigureText] = {}
    for index, block in enumerate(blocks):
        for match in _IMAGE.finditer(block):
            name = match.group(1)
            if name in result:
                continue
            inline = clean_block(block[match.end() :].split("\n", 1)[0])
            caption_index = None
            if inline and not _IMAGE.search(block[match.end() :].split("\n", 1)[0]):
                caption = inline
            else:
                caption = ""
                after = next((i for i in range(index + 1, len(blocks)) if blocks[i].strip()), None)
                if (
                    after is not None
                    and prose[after]
                    and not _IMAGE.search(blocks[after])
                    and len(prose[after]) <= MAX_CAPTION_CHARS
                ):
                    caption, caption_index = prose[after], after
            number = _figure_number(caption, blocks, index)
            citation = ""
            if number is not None:
                citation = next(
                    (
                        text
                        for i, text in enumerate(prose)
                        if text
                        and i != caption_index
                        and text != caption
                        and _names_number(text, number)
                    ),
                    "",
                )
            if not citation:
                start = (caption_index if caption_index is not None else index) + 1
                citation = next(
                    (
                        prose[i]
                        for i in range(start, len(blocks))
                        if prose[i] and not _IMAGE.search(blocks[i])
                    ),
                    "",
                )
            result[name] = FigureText(caption=caption, citation=citation)
    return result


def _figure_number(caption: str, blocks: list[str], index: int) -> str | None:
    match = _LEADING_NUMBER.match(caption)
    if match:
        return match.group(1)
    previous = next((blocks[i] for i in range(index - 1, -1, -1) if blocks[i].strip()), "")
    if _HEADING.match(previous):
        heading = _HEADING_NUMBER.match(previous)
        if heading:
            return heading.group(1)
    return None
