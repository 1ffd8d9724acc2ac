"""Bibliographic records of corpus works, written as BibTeX, RIS and CSL-JSON.

A work's record starts from the corpus's own BibTeX entry, parsed with bibtexparser and
normalised (HTML stripped, LaTeX decoded, placeholder values such as "null" dropped), and is
completed from the work's metadata (title, author, year, DOI, link); a work without a
parsable entry gets one from its metadata alone. The DOI is always the work's own when it has
one.

Keys are `<first author's family name><year><first significant title word>`, folded to ASCII
(`millais2012life`); works whose keys collide get `a`, `b`, … in the order of their corpus
ids, so the same set of works always gets the same keys, whatever their order in the file.

Each record carries the quotations exported with it (a collection's sentences, an analysis's
pinned sentences): BibTeX `note`, RIS `N1` (one per quotation), CSL-JSON `note`.
"""

from __future__ import annotations

import html
import re
import string
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import bibtexparser
import rispy
from bibtexparser.library import Library
from bibtexparser.middlewares import LatexEncodingMiddleware
from bibtexparser.middlewares.names import (
    InvalidNameError,
    parse_single_name_into_parts,
    split_multiple_persons_names,
)
from bibtexparser.model import Entry, Field
from pylatexenc.latex2text import LatexNodes2Text
from pylatexenc.latexencode import (
    RULE_DICT,
    UnicodeToLatexConversionRule,
    UnicodeToLatexEncoder,
    get_builtin_conversion_rules,
)

from apps.corpus.models import Work

BIBTEX_TYPES = {
    "article",
    "book",
    "booklet",
    "inbook",
    "incollection",
    "inproceedings",
    "manual",
    "mastersthesis",
    "misc",
    "phdthesis",
    "proceedings",
    "techreport",
    "unpublished",
}
"""Entry types kept from the corpus's BibTeX; any other becomes `misc`."""

EXTRA_FIELDS = ("journal", "booktitle", "volume", "number", "pages", "publisher")
"""Fields taken over from a corpus entry besides author, title, year, DOI and URL."""

PLACEHOLDERS = {"", "null", "none", "nan", "n/a", "unknown"}
UNKNOWN_AUTHORS = {"unknown author", "unknown", "anonymous", "anon"}

RIS_TYPES = {
    "article": "JOUR",
    "book": "BOOK",
    "inbook": "CHAP",
    "incollection": "CHAP",
    "inproceedings": "CPAPER",
    "proceedings": "CONF",
    "phdthesis": "THES",
    "mastersthesis": "THES",
    "techreport": "RPRT",
    "unpublished": "UNPB",
    "manual": "GEN",
}
CSL_TYPES = {
    "article": "article-journal",
    "book": "book",
    "inbook": "chapter",
    "incollection": "chapter",
    "inproceedings": "paper-conference",
    "proceedings": "book",
    "phdthesis": "thesis",
    "mastersthesis": "thesis",
    "techreport": "report",
    "manual": "report",
}
TITLE_STOPWORDS = {
    "a", "an", "and", "at", "by", "das", "de", "del", "della", "der", "des", "di", "die", "du",
    "el", "for", "from", "il", "in", "la", "le", "les", "lo", "of", "on", "the", "to", "un",
    "una", "une", "with",
}  # fmt: skip

_TAG = re.compile(r"<[^>]+>")
# An opening inline tag glued to the word before it ("and<i>Titus") stood for a space.
_GLUED_TAG = re.compile(r"(?<=\w)<(?:i|em|b|strong)\b[^>]*>(?=\w)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_YEAR = re.compile(r"\b(\d{4})\b")
_DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/")


def _latex_encoder() -> UnicodeToLatexEncoder:
    """LaTeX's special characters escaped and Latin letters, quotes and dashes as LaTeX
    macros; other scripts (Greek, Cyrillic, CJK, …) stay UTF-8, which biber and every
    reference manager read, rather than pylatexenc's math-mode symbols for Greek letters."""
    (defaults,) = get_builtin_conversion_rules("defaults")
    latin = {
        code: latex
        for code, latex in defaults.rule.items()
        if code < 0x0370 or 0x2000 <= code < 0x2070
    }
    return UnicodeToLatexEncoder(
        conversion_rules=[UnicodeToLatexConversionRule(RULE_DICT, latin)],
        unknown_char_policy="keep",
        unknown_char_warning=False,
    )


LATEX = _latex_encoder()
LATEX_TEXT = LatexNodes2Text(math_mode="verbatim")


def plain_text(value: str) -> str:
    """`value` without HTML markup or entities, on one line."""
    text = html.unescape(_TAG.sub("", _GLUED_TAG.sub(" ", value)))
    return _SPACE.sub(" ", text).strip()


def bare_doi(doi: str) -> str:
    """A DOI without resolver prefix, or "" when `doi` is not one."""
    doi = doi.strip()
    for prefix in (*_DOI_PREFIXES, "doi:"):
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix) :].strip()
    return doi if doi.startswith("10.") else ""


@dataclass(frozen=True)
class Person:
    """An author: family and given names, or one literal name (an institution)."""

    family: str = ""
    given: str = ""
    literal: str = ""


@dataclass(frozen=True)
class Quotation:
    """A sentence exported with its work, where it came from, and the researcher's words."""

    text: str
    source: str = ""
    annotation: str = ""

    def as_note(self) -> str:
        parts = [f"“{self.text}”"]
        if self.source:
            parts.append(self.source)
        if self.annotation:
            parts.append(f"Annotation: {self.annotation}")
        return _SPACE.sub(" ", " — ".join(parts)).strip()


@dataclass
class Reference:
    """A work's bibliographic record, normalised to plain text."""

    work_id: str
    entry_type: str
    title: str
    authors: list[Person]
    year: str
    doi: str
    url: str
    extra: dict[str, str] = field(default_factory=dict)
    quotations: list[Quotation] = field(default_factory=list)
    key: str = ""


def parse_people(names: str) -> list[Person]:
    """BibTeX-style names ("A B and C, D") as people; placeholders give no one."""
    people = []
    for name in split_multiple_persons_names(plain_text(names)):
        name = name.strip().strip("{}").strip()
        if name.lower() in UNKNOWN_AUTHORS or name.lower() in PLACEHOLDERS:
            continue
        try:
            parts = parse_single_name_into_parts(name, strict=False)
        except InvalidNameError:
            parts = None
        if parts is None or not parts.last:
            people.append(Person(literal=name))
            continue
        family = " ".join([*parts.von, *parts.last, *parts.jr])
        given = " ".join(parts.first)
        people.append(Person(family=family, given=given) if given else Person(literal=family))
    return people


def _decoded(value: str) -> str:
    """A field value as text. Harvested entries are mostly raw text in braces, where a `%`
    or `~` means itself: only a value with a LaTeX command is decoded as LaTeX."""
    if "\\" in value:
        return LATEX_TEXT.latex_to_text(value)
    return value.replace("{", "").replace("}", "")


def _corpus_entry(bibtex: str) -> tuple[str, dict[str, str]] | None:
    """The entry type and plain-text fields of a corpus BibTeX entry, or None when it does
    not parse to exactly one entry."""
    if not bibtex.strip():
        return None
    library = bibtexparser.parse_string(bibtex)
    if library.failed_blocks or len(library.entries) != 1:
        return None
    entry = library.entries[0]
    fields = {}
    for item in entry.fields:
        if not isinstance(item.value, str):
            continue
        value = plain_text(_decoded(item.value))
        if value.lower() not in PLACEHOLDERS:
            fields[item.key.lower()] = value
    return entry.entry_type.lower(), fields


def reference_for(work: Work, quotations: Sequence[Quotation] = ()) -> Reference:
    """The work's record: its corpus BibTeX where that parses, completed from its metadata."""
    entry_type, fields = _corpus_entry(work.bibtex) or ("misc", {})
    year = _YEAR.search(fields.get("year", "") or work.year)
    url = fields.get("url", "")
    if not url.lower().startswith(("https://", "http://")):
        url = work.link_url
    return Reference(
        work_id=work.id,
        entry_type=entry_type if entry_type in BIBTEX_TYPES else "misc",
        title=fields.get("title") or plain_text(work.title) or work.id,
        authors=parse_people(fields.get("author") or work.author),
        year=year.group(1) if year else "",
        doi=bare_doi(work.doi) or bare_doi(fields.get("doi", "")),
        url=url,
        extra={name: fields[name] for name in EXTRA_FIELDS if name in fields},
        quotations=list(quotations),
    )


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(char for char in folded.lower() if char in string.ascii_lowercase)


def base_key(reference: Reference) -> str:
    first = reference.authors[0] if reference.authors else None
    name = ""
    if first is not None:
        family = first.family or first.literal
        name = _ascii_word(family.split()[-1] if family.split() else "")
    word = next(
        (
            folded
            for folded in (_ascii_word(part) for part in re.split(r"[\s\-–—/:]+", reference.title))
            if len(folded) > 1 and folded not in TITLE_STOPWORDS
        ),
        "",
    )
    return f"{name or 'anon'}{reference.year or 'nd'}{word or reference.work_id.lower()}"


def _suffix(index: int) -> str:
    """a, b, …, z, aa, ab, …"""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = string.ascii_lowercase[rest] + letters
    return letters


def assign_keys(references: Iterable[Reference]) -> None:
    """Give every reference a key unique among them, the same for the same set of works."""
    groups: dict[str, list[Reference]] = defaultdict(list)
    for reference in references:
        groups[base_key(reference)].append(reference)
    for key, group in groups.items():
        if len(group) == 1:
            group[0].key = key
            continue
        for index, reference in enumerate(sorted(group, key=lambda ref: ref.work_id)):
            reference.key = key + _suffix(index)


def _bibtex_name(person: Person) -> str:
    if person.literal:
        return "{" + LATEX.unicode_to_latex(person.literal) + "}"
    family = LATEX.unicode_to_latex(person.family)
    if "," in family or re.search(r"\band\b", family):
        family = "{" + family + "}"
    return f"{family}, {LATEX.unicode_to_latex(person.given)}"


def _verbatim(value: str) -> str:
    """A DOI or URL as biblatex reads it (verbatim, not LaTeX-encoded); a backslash or an
    unbalanced brace, which would break the field, is percent-encoded."""
    depth = 0
    for char in value:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            break
    if depth == 0 and "\\" not in value:
        return value
    return value.replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")


def _bibtex_entry(reference: Reference) -> Entry:
    """The entry with its text fields LaTeX-encoded by bibtexparser's middleware, the names
    with the same encoder, and DOI and URL verbatim."""
    text_fields = [("title", reference.title)]
    if reference.year:
        text_fields.append(("year", reference.year))
    text_fields += list(reference.extra.items())
    if reference.quotations:
        text_fields.append(("note", "\n".join(q.as_note() for q in reference.quotations)))
    draft = Entry(reference.entry_type, reference.key, [Field(k, v) for k, v in text_fields])
    (encoded,) = LatexEncodingMiddleware(encoder=LATEX).transform(Library([draft])).entries
    fields = []
    if reference.authors:
        fields.append(Field("author", " and ".join(map(_bibtex_name, reference.authors))))
    for item in encoded.fields:
        # The title braced again after encoding: its capitals are kept as written.
        value = "{" + item.value + "}" if item.key == "title" else item.value
        if item.key == "note":
            fields += [Field(name, _verbatim(value)) for name, value in _links(reference)]
        fields.append(Field(item.key, value))
    if not reference.quotations:
        fields += [Field(name, _verbatim(value)) for name, value in _links(reference)]
    return Entry(reference.entry_type, reference.key, fields)


def _links(reference: Reference) -> list[tuple[str, str]]:
    return [
        (name, value) for name, value in (("doi", reference.doi), ("url", reference.url)) if value
    ]


def _parses_back(text: str, key: str) -> bool:
    library = bibtexparser.parse_string(text)
    return not library.failed_blocks and [e.key for e in library.entries] == [key]


def render_bibtex(references: Sequence[Reference]) -> str:
    """The references as BibTeX, each entry parsed back before it is kept; an entry built
    from a corpus record that does not parse back is built from the work's metadata alone."""
    chunks = []
    for reference in references:
        text = bibtexparser.write_string(Library([_bibtex_entry(reference)]))
        if not _parses_back(text, reference.key):
            reference.entry_type, reference.extra = "misc", {}
            text = bibtexparser.write_string(Library([_bibtex_entry(reference)]))
            if not _parses_back(text, reference.key):
                raise ValueError(f"The BibTeX entry of {reference.work_id} does not parse back.")
        chunks.append(text.strip() + "\n")
    return "\n".join(chunks)


class ZoteroRisWriter(rispy.RisWriter):
    """RIS whose records start with `TY  -`: rispy's default numbers each record on a line
    of its own before it, which Zotero takes for a malformed file."""

    def set_header(self, count: int) -> str:
        return ""


def _one_line(value: str) -> str:
    return _SPACE.sub(" ", value).strip()


def _ris_name(person: Person) -> str:
    return person.literal or f"{person.family}, {person.given}"


def _pages(pages: str) -> tuple[str, str]:
    start, _, end = re.sub(r"[–—]+|-+", "-", pages).partition("-")
    return start.strip(), end.strip()


def ris_record(reference: Reference) -> dict:
    record: dict = {
        "type_of_reference": RIS_TYPES.get(reference.entry_type, "GEN"),
        "id": reference.key,
        "title": _one_line(reference.title),
    }
    if reference.authors:
        record["authors"] = [_one_line(_ris_name(person)) for person in reference.authors]
    if reference.year:
        record["year"] = reference.year
    extra = reference.extra
    container = extra.get("journal") or extra.get("booktitle")
    if container:
        record["secondary_title"] = _one_line(container)
    for name, ris in (("volume", "volume"), ("number", "number"), ("publisher", "publisher")):
        if name in extra:
            record[ris] = _one_line(extra[name])
    if "pages" in extra:
        start, end = _pages(extra["pages"])
        record["start_page"] = start
        if end:
            record["end_page"] = end
    if reference.doi:
        record["doi"] = reference.doi
    if reference.url:
        record["urls"] = [reference.url]
    if reference.quotations:
        record["notes"] = [_one_line(q.as_note()) for q in reference.quotations]
    return record


def render_ris(references: Sequence[Reference]) -> str:
    return ZoteroRisWriter().formats([ris_record(reference) for reference in references])


def csl_item(reference: Reference) -> dict:
    """The reference as a CSL-JSON item (the input of citeproc processors and Zotero)."""
    item: dict = {
        "id": reference.key or reference.work_id,
        "type": CSL_TYPES.get(reference.entry_type, "document"),
        "title": reference.title,
    }
    if reference.authors:
        item["author"] = [
            {"literal": p.literal} if p.literal else {"family": p.family, "given": p.given}
            for p in reference.authors
        ]
    if reference.year:
        item["issued"] = {"date-parts": [[int(reference.year)]]}
    extra = reference.extra
    container = extra.get("journal") or extra.get("booktitle")
    if container:
        item["container-title"] = container
    else:
        # Without its journal an article cites as a document (citeproc-py's journal layout
        # otherwise prints a stray "Edition.").
        item["type"] = "document" if item["type"] == "article-journal" else item["type"]
    for name, csl in (("volume", "volume"), ("number", "issue"), ("pages", "page")):
        if name in extra:
            item[csl] = extra[name]
    if "publisher" in extra:
        item["publisher"] = extra["publisher"]
    if reference.doi:
        item["DOI"] = reference.doi
    if reference.url:
        item["URL"] = reference.url
    if reference.quotations:
        item["note"] = "\n".join(q.as_note() for q in reference.quotations)
    return item
