"""Writes to the corpus: import, export and curation (vector storage is apps.corpus.vectors).

Every change of a ``published`` flag goes through :func:`set_works_published` or
:func:`set_sentences_published`, which keep the embeddings' ``searchable`` copy and the works'
published sentence counts in step; search relies on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from django.db import transaction

from apps.corpus import vectors
from apps.corpus.importers import export
from apps.corpus.importers.pipeline import CorpusImport, ImportSummary
from apps.corpus.models import Sentence, Work
from apps.engine.config import model_keys


def import_corpus(
    roots: Sequence[Path],
    *,
    batch_works: int = 50,
    chunk_rows: int = 20_000,
    progress: bool = False,
) -> ImportSummary:
    """Import an ArteFact source (one or more folders); see apps.corpus.importers.pipeline.

    Raises :class:`CorpusSourceError` for bad input, before anything is written.
    """
    return CorpusImport(
        roots,
        model_keys=model_keys(),
        batch_works=batch_works,
        chunk_rows=chunk_rows,
        progress=progress,
    ).run()


def export_corpus(dest: Path, *, published_only: bool = False, progress: bool = False) -> dict:
    """Write the corpus in the ArteFact layout under `dest`; see apps.corpus.importers.export.

    Returns counts of what was written, by kind (works, sentences, embeddings[<model>]).
    """
    return export.export_corpus(
        dest,
        model_keys=model_keys(),
        published_only=published_only,
        progress=progress,
    )


def set_works_published(work_ids: Iterable[str], published: bool) -> int:
    """Publish or unpublish works; their sentences' embeddings follow. Returns works changed."""
    work_ids = list(work_ids)
    with transaction.atomic():
        changed = Work.objects.filter(id__in=work_ids).exclude(published=published)
        changed_ids = list(changed.values_list("id", flat=True))
        Work.objects.filter(id__in=changed_ids).update(published=published)
        vectors.sync_searchable("work_id", changed_ids)
    return len(changed_ids)


def set_sentences_published(sentence_ids: Iterable[str], published: bool) -> int:
    """Publish or unpublish single sentences; returns sentences changed."""
    sentence_ids = list(sentence_ids)
    with transaction.atomic():
        changed = Sentence.objects.filter(id__in=sentence_ids).exclude(published=published)
        rows = list(changed.values_list("id", "work_id"))
        Sentence.objects.filter(id__in=[sid for sid, _ in rows]).update(published=published)
        vectors.sync_searchable("sentence_id", [sid for sid, _ in rows])
        vectors.refresh_published_counts({work_id for _, work_id in rows})
    return len(rows)
