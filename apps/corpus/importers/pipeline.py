"""The import of one ArteFact source, in two phases: stage and check, then write in batches.

Phase 1 reads every input once, streaming, into temporary tables of this connection
(sentences, paragraphs, embedding ids) and checks it all — malformed JSON, unknown works,
row counts, dimensions, NaN rows — before the first write, so bad input leaves the database as
it was. Phase 2 writes: metadata in one transaction, then the text of changed works and the
vectors in batches that commit one by one. Each batch is idempotent (a work's text is keyed by
a digest of its source; vectors are upserted only where they differ), so a run killed half-way
and started again finishes with exactly the rows of an uninterrupted run, and a second run
writes nothing.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.core.files.storage import default_storage
from django.db import connection, transaction
from tqdm import tqdm

from apps.corpus.importers import CorpusSourceError
from apps.corpus.importers.artefact_layout import (
    IMAGE_SUFFIXES,
    EmbeddingSource,
    Layout,
    Metadata,
    WorkRecord,
    discover,
    embedding_shape,
    first_bad_row,
    iter_embedding_chunks,
    iter_embedding_ids,
    iter_sentences,
    read_metadata,
    work_of_sentence,
)
from apps.corpus.importers.copy import copy_rows
from apps.corpus.importers.figures import FigureText, figure_texts
from apps.corpus.importers.sentences import align_sentences, split_markdown
from apps.corpus.models import (
    Creator,
    Paragraph,
    Sentence,
    SentenceEmbedding,
    Topic,
    Work,
    WorkImage,
    display_name_from_slug,
)
from apps.corpus.vectors import (
    MAX_INDEX_DIMENSIONS,
    STAGE_VECTORS,
    drop_other_vector_indexes,
    drop_vector_index,
    ensure_vector_index,
    get_stored_dimension,
    refresh_published_counts,
    upsert_vectors,
)

TEXT_FORMAT_VERSION = "punkt-paragraphs-1"
"""Part of every work's text digest: changing the splitter re-imports Markdown-only works."""

STAGE_SENTENCE = "corpus_stage_sentence"
STAGE_PARAGRAPH = "corpus_stage_paragraph"
STAGE_EMBEDDING_ID = "corpus_stage_embedding_id"


@dataclass
class ImportSummary:
    """What an import found and did; `lines()` is what the command prints."""

    works: int = 0
    works_written: int = 0
    metadata_only_works: int = 0
    creators: int = 0
    topics: int = 0
    sentences: int = 0
    paragraphs: int = 0
    images: int = 0
    embeddings: dict[str, int] = field(default_factory=dict)
    embeddings_written: dict[str, int] = field(default_factory=dict)
    unaligned_sentences: int = 0
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [
            f"works: {self.works} ({self.works_written} written, "
            f"{self.metadata_only_works} metadata only)",
            f"creators: {self.creators}, topics: {self.topics}",
            f"sentences: {self.sentences}, paragraphs: {self.paragraphs}, images: {self.images}",
        ]
        for model, count in sorted(self.embeddings.items()):
            written = self.embeddings_written.get(model, 0)
            lines.append(f"embeddings[{model}]: {count} ({written} written)")
        if self.unaligned_sentences:
            lines.append(
                f"sentences without a paragraph (text not found in the Markdown): "
                f"{self.unaligned_sentences}"
            )
        lines.append(f"skipped: {len(self.skipped)}")
        lines.extend(f"  - {reason}" for reason in self.skipped)
        return lines


@dataclass
class _WorkText:
    """One work's staged text: where it came from and what the database must end up with."""

    digest: Any = field(default_factory=hashlib.sha256)
    markdown: str = ""
    images: list[Path] = field(default_factory=list)
    has_text: bool = False


def _table(model: type) -> str:
    return model._meta.db_table


class CorpusImport:
    """One run of the importer over `roots`; see the module docstring for the phases."""

    def __init__(
        self,
        roots: Sequence[Path],
        *,
        model_keys: Iterable[str],
        batch_works: int = 50,
        chunk_rows: int = 20_000,
        progress: bool = False,
    ) -> None:
        self.roots = [Path(root) for root in roots]
        self.model_keys = set(model_keys)
        self.batch_works = max(1, batch_works)
        self.chunk_rows = max(1, chunk_rows)
        self.progress = progress
        self.summary = ImportSummary()
        self.texts: dict[str, _WorkText] = defaultdict(_WorkText)
        self.dimensions: dict[str, int] = {}

    def _bar(self, **kwargs: Any) -> tqdm:
        return tqdm(disable=not self.progress, dynamic_ncols=True, **kwargs)

    # -- phase 1 -------------------------------------------------------------------------------

    def run(self) -> ImportSummary:
        layout = discover(self.roots)
        self.summary.skipped.extend(layout.skipped)
        metadata = read_metadata(layout)
        self.summary.skipped.extend(metadata.skipped)
        sources = []
        for source in layout.embeddings:
            if source.model in self.model_keys:
                sources.append(source)
            else:
                self.summary.skipped.append(
                    f"{source.tensor_path.name}: model {source.model!r} is not configured "
                    f"(known: {', '.join(sorted(self.model_keys))})"
                )
        with connection.cursor() as cursor:
            # Staging is one transaction: bad input rolls it back, temporary tables included.
            with transaction.atomic():
                self._create_stage_tables(cursor)
                self._stage_sentences(cursor, layout, metadata)
                self._stage_markdown(cursor, layout, metadata)
                for source in sources:
                    self._stage_embeddings(cursor, source, metadata)
            self._write_metadata(metadata)
            self._write_texts(cursor)
            for source in sources:
                self._write_embeddings(cursor, source)
            # After a failure the tables go with the connection; the next run recreates them.
            self._drop_stage_tables(cursor)
        self._count(metadata)
        return self.summary

    def _create_stage_tables(self, cursor: Any) -> None:
        self._drop_stage_tables(cursor)
        cursor.execute(
            f"CREATE TEMP TABLE {STAGE_SENTENCE} (id text PRIMARY KEY, work_id text NOT NULL,"
            f" position int NOT NULL, text text NOT NULL, paragraph int,"
            f" UNIQUE (work_id, position))"
        )
        cursor.execute(
            f"CREATE TEMP TABLE {STAGE_PARAGRAPH} (work_id text NOT NULL, position int NOT NULL,"
            f" text text NOT NULL, PRIMARY KEY (work_id, position))"
        )
        cursor.execute(
            f"CREATE TEMP TABLE {STAGE_EMBEDDING_ID} (model text NOT NULL, ord int NOT NULL,"
            f" id text NOT NULL, PRIMARY KEY (model, ord))"
        )

    def _drop_stage_tables(self, cursor: Any) -> None:
        for table in (STAGE_SENTENCE, STAGE_PARAGRAPH, STAGE_EMBEDDING_ID, STAGE_VECTORS):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def _stage_sentences(self, cursor: Any, layout: Layout, metadata: Metadata) -> None:
        path = layout.json_files.get("sentences")
        if path is None:
            return
        expected = sum(record.source_sentence_count for record in metadata.works.values())
        bar = self._bar(total=expected or None, desc="sentences.json", unit=" sentences")

        def rows() -> Iterator[tuple[str, str, int, str, None]]:
            for sentence_id, work_id, position, text in iter_sentences(path, metadata.works):
                staged = self.texts[work_id]
                staged.has_text = True
                staged.digest.update(f"{sentence_id}\0{text}\0".encode())
                bar.update()
                yield sentence_id, work_id, position, text, None

        try:
            with transaction.atomic():
                copy_rows(cursor, STAGE_SENTENCE, _SENTENCE_COLUMNS, rows())
        except psycopg.errors.UniqueViolation as error:
            raise CorpusSourceError(
                f"{path.name}: a sentence id or position appears twice ({_detail(error)})"
            ) from None
        finally:
            bar.close()

    def _stage_markdown(self, cursor: Any, layout: Layout, metadata: Metadata) -> None:
        paths = {}
        for work_id, path in layout.markdown.items():
            if work_id in metadata.works:
                paths[work_id] = path
            else:
                self.summary.skipped.append(f"{path}: {work_id} is not a work of works.json")
        sentence_rows: list[tuple[str, str, int, str, int]] = []
        paragraph_rows: list[tuple[str, int, str]] = []
        alignment: list[tuple[str, int | None]] = []
        for work_id in self._bar(iterable=sorted(paths), desc="Markdown", unit=" works"):
            path = paths[work_id]
            try:
                markdown = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:
                raise CorpusSourceError(f"{path}: not UTF-8 text ({error.reason})") from None
            split = split_markdown(markdown)
            staged = self.texts[work_id]
            staged.markdown = markdown
            staged.images = _work_images(path, split.images)
            staged.digest.update(hashlib.sha256(markdown.encode()).digest())
            for image in staged.images:
                staged.digest.update(f"{image.name}\0{image.stat().st_size}\0".encode())
            paragraph_rows.extend(
                (work_id, index, text) for index, text in enumerate(split.paragraphs)
            )
            if staged.has_text:
                cursor.execute(
                    f"SELECT id, text FROM {STAGE_SENTENCE} WHERE work_id = %s ORDER BY position",
                    [work_id],
                )
                given = cursor.fetchall()
                found = align_sentences(split.paragraphs, [text for _, text in given])
                alignment.extend(zip((sid for sid, _ in given), found, strict=True))
                self.summary.unaligned_sentences += found.count(None)
            else:
                staged.has_text = True
                for position, (paragraph, text) in enumerate(split.sentences, start=1):
                    sentence_id = f"{work_id}_s{position:04d}"
                    sentence_rows.append((sentence_id, work_id, position, text, paragraph))
                    staged.digest.update(f"{sentence_id}\0{text}\0{paragraph}\0".encode())
            if len(sentence_rows) + len(paragraph_rows) > 50_000:
                self._flush_markdown(cursor, sentence_rows, paragraph_rows)
        self._flush_markdown(cursor, sentence_rows, paragraph_rows)
        if alignment:
            cursor.execute("CREATE TEMP TABLE corpus_stage_alignment (id text, paragraph int)")
            copy_rows(
                cursor, "corpus_stage_alignment", [("id", "text"), ("paragraph", "int4")], alignment
            )
            cursor.execute(
                f"UPDATE {STAGE_SENTENCE} s SET paragraph = a.paragraph"
                f" FROM corpus_stage_alignment a WHERE a.id = s.id"
            )
            cursor.execute("DROP TABLE corpus_stage_alignment")
        for work_id in metadata.works:
            staged = self.texts.get(work_id)
            if staged is not None and staged.has_text:
                staged.digest.update(TEXT_FORMAT_VERSION.encode())
            else:
                self.summary.skipped.append(f"{work_id}: no text in the source, metadata only")

    def _flush_markdown(
        self,
        cursor: Any,
        sentence_rows: list[tuple[str, str, int, str, int]],
        paragraph_rows: list[tuple[str, int, str]],
    ) -> None:
        copy_rows(cursor, STAGE_SENTENCE, _SENTENCE_COLUMNS, sentence_rows)
        copy_rows(
            cursor,
            STAGE_PARAGRAPH,
            [("work_id", "text"), ("position", "int4"), ("text", "text")],
            paragraph_rows,
        )
        sentence_rows.clear()
        paragraph_rows.clear()

    def _stage_embeddings(self, cursor: Any, source: EmbeddingSource, metadata: Metadata) -> None:
        rows, dim = embedding_shape(source)
        ids_name = source.ids_path.name
        held = get_stored_dimension(source.model)
        if held is not None and held != dim:
            raise CorpusSourceError(
                f"{source.tensor_path.name}: vectors have {dim} dimensions but the database "
                f"holds {held}-dimensional {source.model!r} embeddings"
            )
        if dim > MAX_INDEX_DIMENSIONS:
            raise CorpusSourceError(
                f"{source.tensor_path.name}: {dim} dimensions; halfvec indexes allow "
                f"{MAX_INDEX_DIMENSIONS}"
            )

        def id_rows() -> Iterator[tuple[str, int, str]]:
            for index, sentence_id in enumerate(iter_embedding_ids(source)):
                work_of_sentence(ids_name, sentence_id, metadata.works)
                yield source.model, index, sentence_id

        count = copy_rows(
            cursor,
            STAGE_EMBEDDING_ID,
            [("model", "text"), ("ord", "int4"), ("id", "text")],
            id_rows(),
        )
        if count != rows:
            raise CorpusSourceError(
                f"{source.tensor_path.name}: {rows} rows but {ids_name} lists {count} sentence ids"
            )
        cursor.execute(
            f"SELECT id, min(ord) FROM {STAGE_EMBEDDING_ID} WHERE model = %s"
            f" GROUP BY id HAVING count(*) > 1 ORDER BY 2 LIMIT 1",
            [source.model],
        )
        duplicate = cursor.fetchone()
        if duplicate:
            raise CorpusSourceError(f"{ids_name}: sentence {duplicate[0]!r} is listed twice")
        # A sentence is known if this source stages it, or the database holds it for a work
        # whose text this source does not restage.
        cursor.execute(
            f"SELECT e.ord, e.id FROM {STAGE_EMBEDDING_ID} e"
            f" WHERE e.model = %s"
            f" AND NOT EXISTS (SELECT 1 FROM {STAGE_SENTENCE} s WHERE s.id = e.id)"
            f" AND NOT EXISTS (SELECT 1 FROM {_table(Sentence)} c WHERE c.id = e.id"
            f"   AND NOT (c.work_id = ANY(%s)))"
            f" ORDER BY e.ord LIMIT 1",
            [source.model, self._works_with_text()],
        )
        unknown = cursor.fetchone()
        if unknown:
            raise CorpusSourceError(
                f"{ids_name}: item {unknown[0]} names sentence {unknown[1]!r}, which the source "
                f"and the database do not hold"
            )
        with self._bar(total=rows, desc=f"check {source.model}", unit=" rows") as bar:
            for start, block in iter_embedding_chunks(source, self.chunk_rows):
                bad = first_bad_row(block)
                if bad is not None:
                    row, what = bad
                    cursor.execute(
                        f"SELECT id FROM {STAGE_EMBEDDING_ID} WHERE model = %s AND ord = %s",
                        [source.model, start + row],
                    )
                    raise CorpusSourceError(
                        f"{source.tensor_path.name}: row {start + row} (sentence "
                        f"{cursor.fetchone()[0]!r}) holds {what}"
                    )
                bar.update(len(block))
        self.dimensions[source.model] = dim

    def _works_with_text(self) -> list[str]:
        return [work_id for work_id, staged in self.texts.items() if staged.has_text]

    # -- phase 2 -------------------------------------------------------------------------------

    def _write_metadata(self, metadata: Metadata) -> None:
        """Creators, topics, works and their links; only rows that differ are written."""
        with transaction.atomic():
            known_creators = set(Creator.objects.values_list("slug", flat=True))
            Creator.objects.bulk_create(
                Creator(slug=slug, name=display_name_from_slug(slug))
                for slug in metadata.creators
                if slug not in known_creators
            )
            names = dict(Topic.objects.values_list("id", "name"))
            Topic.objects.bulk_create(
                Topic(id=topic_id, name=metadata.topic_names.get(topic_id))
                for topic_id in metadata.topics
                if topic_id not in names
            )
            renamed = [
                Topic(id=topic_id, name=name)
                for topic_id, name in metadata.topic_names.items()
                if topic_id in names and names[topic_id] != name
            ]
            Topic.objects.bulk_update(renamed, ["name"])

            existing = {work.id: work for work in Work.objects.defer("markdown")}
            created, changed = [], []
            for record in metadata.works.values():
                work = existing.get(record.id)
                if work is None:
                    created.append(Work(**_work_fields(record), id=record.id))
                elif any(getattr(work, k) != v for k, v in _work_fields(record).items()):
                    for key, value in _work_fields(record).items():
                        setattr(work, key, value)
                    changed.append(work)
            Work.objects.bulk_create(created, batch_size=1000)
            Work.objects.bulk_update(changed, list(_WORK_FIELDS), batch_size=1000)

            creator_links = {
                (work_id, slug)
                for slug, work_ids in metadata.creators.items()
                for work_id in work_ids
            } | {(r.id, r.artist) for r in metadata.works.values() if r.artist}
            topic_links = {
                (work_id, topic_id)
                for topic_id, work_ids in metadata.topics.items()
                for work_id in work_ids
            } | {(r.id, t) for r in metadata.works.values() for t in r.topic_ids}
            _sync_links(Work.creators.through, "creator_id", creator_links, metadata.works)
            _sync_links(Work.topics.through, "topic_id", topic_links, metadata.works)

    def _write_texts(self, cursor: Any) -> None:
        """Replace sentences, paragraphs and images of works whose text digest changed."""
        digests = dict(Work.objects.values_list("id", "text_digest"))
        pending = [
            work_id
            for work_id, staged in sorted(self.texts.items())
            if staged.has_text and digests.get(work_id) != staged.digest.hexdigest()
        ]
        with self._bar(total=len(pending), desc="write texts", unit=" works") as bar:
            for start in range(0, len(pending), self.batch_works):
                batch = pending[start : start + self.batch_works]
                with transaction.atomic():
                    self._write_text_batch(cursor, batch)
                self.summary.works_written += len(batch)
                bar.update(len(batch))

    def _write_text_batch(self, cursor: Any, batch: list[str]) -> None:
        sentence, paragraph, embedding = (
            _table(Sentence),
            _table(Paragraph),
            _table(SentenceEmbedding),
        )
        # Curators' unpublished sentences stay unpublished when their id survives.
        cursor.execute(
            f"SELECT id FROM {sentence} WHERE work_id = ANY(%s) AND NOT published", [batch]
        )
        unpublished = [row[0] for row in cursor.fetchall()]
        # Vectors of sentences that keep their text survive; the rest are stale.
        cursor.execute(
            f"DELETE FROM {embedding} e USING {sentence} s"
            f" WHERE e.sentence_id = s.id AND s.work_id = ANY(%s) AND NOT EXISTS"
            f" (SELECT 1 FROM {STAGE_SENTENCE} st WHERE st.id = s.id AND st.text = s.text)",
            [batch],
        )
        cursor.execute(f"DELETE FROM {sentence} WHERE work_id = ANY(%s)", [batch])
        cursor.execute(f"DELETE FROM {paragraph} WHERE work_id = ANY(%s)", [batch])
        cursor.execute(
            f"INSERT INTO {paragraph} (work_id, position, text)"
            f" SELECT work_id, position, text FROM {STAGE_PARAGRAPH} WHERE work_id = ANY(%s)",
            [batch],
        )
        cursor.execute(
            f"INSERT INTO {sentence} (id, work_id, position, text, paragraph_id, published)"
            f" SELECT st.id, st.work_id, st.position, st.text, p.id, NOT (st.id = ANY(%s))"
            f" FROM {STAGE_SENTENCE} st LEFT JOIN {paragraph} p"
            f"   ON p.work_id = st.work_id AND p.position = st.paragraph"
            f" WHERE st.work_id = ANY(%s)",
            [unpublished, batch],
        )
        WorkImage.objects.filter(work_id__in=batch).delete()
        images = []
        for work_id in batch:
            described = figure_texts(self.texts[work_id].markdown or "")
            for position, path in enumerate(self.texts[work_id].images):
                name = f"corpus/images/{work_id}/{path.name}"
                target = Path(default_storage.path(name))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                text = described.get(path.name, FigureText())
                images.append(
                    WorkImage(
                        work_id=work_id,
                        name=path.name,
                        position=position,
                        image=name,
                        caption=text.caption,
                        citation=text.citation,
                    )
                )
        WorkImage.objects.bulk_create(images)
        for work_id in batch:
            staged = self.texts[work_id]
            Work.objects.filter(id=work_id).update(
                markdown=staged.markdown, text_digest=staged.digest.hexdigest()
            )
        refresh_published_counts(batch)

    def _write_embeddings(self, cursor: Any, source: EmbeddingSource) -> None:
        dim = self.dimensions[source.model]
        drop_other_vector_indexes(source.model, dim)
        rows, _ = embedding_shape(source)
        embedding = _table(SentenceEmbedding)
        cursor.execute(f"SELECT count(*) FROM {embedding} WHERE model = %s", [source.model])
        held = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT count(*) FROM {STAGE_EMBEDDING_ID} st WHERE st.model = %s AND NOT EXISTS"
            f" (SELECT 1 FROM {embedding} e WHERE e.model = st.model AND e.sentence_id = st.id)",
            [source.model],
        )
        new = cursor.fetchone()[0]
        # Building an HNSW index once over all rows is far faster than growing it row by row;
        # a repeated or resumed run that adds little keeps the index it has.
        if new > 50_000 and new > held // 5:
            drop_vector_index(source.model)
        written = 0
        with self._bar(total=rows, desc=f"write {source.model}", unit=" rows") as bar:
            for start, block in iter_embedding_chunks(source, self.chunk_rows):
                cursor.execute(
                    f"SELECT id FROM {STAGE_EMBEDDING_ID} WHERE model = %s"
                    f" AND ord >= %s AND ord < %s ORDER BY ord",
                    [source.model, start, start + len(block)],
                )
                ids = [row[0] for row in cursor.fetchall()]
                with transaction.atomic():
                    written += upsert_vectors(cursor, source.model, ids, block)
                bar.update(len(block))
        self.summary.embeddings_written[source.model] = written
        ensure_vector_index(source.model, dim, progress=self.progress)

    def _count(self, metadata: Metadata) -> None:
        summary = self.summary
        summary.works = Work.objects.count()
        summary.metadata_only_works = Work.objects.filter(sentences__isnull=True).distinct().count()
        summary.creators = Creator.objects.count()
        summary.topics = Topic.objects.count()
        summary.sentences = Sentence.objects.count()
        summary.paragraphs = Paragraph.objects.count()
        summary.images = WorkImage.objects.count()
        for model in sorted(self.model_keys | set(self.dimensions)):
            count = SentenceEmbedding.objects.filter(model=model).count()
            if count or model in self.dimensions:
                summary.embeddings[model] = count


_SENTENCE_COLUMNS = [
    ("id", "text"),
    ("work_id", "text"),
    ("position", "int4"),
    ("text", "text"),
    ("paragraph", "int4"),
]

_WORK_FIELDS = {
    "title": "title",
    "author": "author",
    "year": "year",
    "doi": "doi",
    "link": "link",
    "bibtex": "bibtex",
    "relevance": "relevance",
    "artist": "artist",
    "image_ids": "image_ids",
    "source_sentence_count": "source_sentence_count",
}


def _work_fields(record: WorkRecord) -> dict[str, Any]:
    return {field_name: getattr(record, attr) for field_name, attr in _WORK_FIELDS.items()}


def _sync_links(
    through: type, other: str, wanted: set[tuple[str, str]], works: dict[str, WorkRecord]
) -> None:
    """Make the links of the source's works equal `wanted`; other works keep theirs."""
    have = set(through.objects.filter(work_id__in=list(works)).values_list("work_id", other))
    stale = have - wanted
    for work_id, other_id in stale:
        through.objects.filter(work_id=work_id, **{other: other_id}).delete()
    through.objects.bulk_create(
        [through(work_id=work_id, **{other: other_id}) for work_id, other_id in wanted - have],
        batch_size=1000,
    )


def _work_images(markdown_path: Path, referenced: list[str]) -> list[Path]:
    """Image files beside the Markdown: referenced ones in reference order, then the rest."""
    folder = markdown_path.parent
    files = {
        path.name: path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    }
    ordered = [files[name] for name in referenced if name in files]
    seen = {path.name for path in ordered}
    ordered.extend(files[name] for name in sorted(files) if name not in seen)
    return ordered


def _detail(error: psycopg.Error) -> str:
    return (error.diag.message_detail or str(error)).strip()
