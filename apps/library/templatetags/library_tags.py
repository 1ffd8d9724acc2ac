"""`{% citation_meta work %}`: Highwire Press `citation_*` meta tags for a work's page, which
the Zotero Connector (and Google Scholar) read to save the work in one click. The record is
the one the exports write (`apps.library.exports.reference_for`): the corpus BibTeX where it
parses, completed from the work's metadata, as plain text."""

from __future__ import annotations

from django import template

from apps.corpus.models import Work
from apps.library.exports import reference_for

register = template.Library()

# BibTeX entry types and the Highwire tag that names where such a work appeared.
_CONTAINER_TAGS = {
    "article": ("journal", "citation_journal_title"),
    "inproceedings": ("booktitle", "citation_conference_title"),
    "incollection": ("booktitle", "citation_inbook_title"),
}


@register.inclusion_tag("library/_citation_meta.html")
def citation_meta(work: Work) -> dict:
    reference = reference_for(work)
    tags = [("citation_title", reference.title)]
    for person in reference.authors:
        name = person.literal or ", ".join(part for part in (person.family, person.given) if part)
        tags.append(("citation_author", name))
    if reference.year:
        tags.append(("citation_publication_date", reference.year))
    container, container_tag = _CONTAINER_TAGS.get(reference.entry_type, ("", ""))
    if container and reference.extra.get(container):
        tags.append((container_tag, reference.extra[container]))
    for name in ("volume", "number", "publisher"):
        if reference.extra.get(name):
            tags.append(
                (f"citation_{'issue' if name == 'number' else name}", reference.extra[name])
            )
    if reference.doi:
        tags.append(("citation_doi", reference.doi))
    if work.link_url:
        tags.append(("citation_pdf_url", work.link_url))
    return {"tags": tags}
