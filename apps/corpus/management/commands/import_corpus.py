"""``manage.py import_corpus --source DIR`` or ``--hf``: load an ArteFact dataset."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.corpus import services
from apps.corpus.importers import CorpusSourceError


class Command(BaseCommand):
    help = (
        "Import works, creators, topics, sentences (sentences.json or split from Markdown), "
        "paragraphs, images and per-model embeddings from the ArteFact dataset layout. "
        "Idempotent and resumable: run it again after an interruption."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--source", type=Path, action="append", help="a dataset folder (repeatable)"
        )
        source.add_argument(
            "--hf", action="store_true", help="download the public datasets from the Hub first"
        )
        parser.add_argument("--batch-size", type=int, default=50, help="works per transaction")
        parser.add_argument("--chunk-rows", type=int, default=20_000, help="vectors per batch")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args: Any, **options: Any) -> None:
        progress = not options["no_progress"] and sys.stderr.isatty()
        roots = download_hf_datasets() if options["hf"] else options["source"]
        try:
            summary = services.import_corpus(
                roots,
                batch_works=options["batch_size"],
                chunk_rows=options["chunk_rows"],
                progress=progress,
            )
        except CorpusSourceError as error:
            raise CommandError(f"nothing imported: {error}") from None
        for line in summary.lines():
            self.stdout.write(line)


def download_hf_datasets() -> list[Path]:
    """Fetch the three dataset repositories (settings.CORPUS_HF_DATASETS) into the cache."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub is a base requirement
        raise CommandError("--hf needs the huggingface_hub package") from None
    roots = []
    for kind, repo_id in settings.CORPUS_HF_DATASETS.items():
        target = Path(settings.CORPUS_HF_CACHE) / repo_id.replace("/", "--")
        try:
            path = snapshot_download(repo_id=repo_id, repo_type="dataset", local_dir=target)
        except Exception as error:  # offline, unknown repository, no disk: all end here
            raise CommandError(
                f"could not download the {kind} dataset {repo_id} from the Hugging Face Hub "
                f"({type(error).__name__}); use --source with a local copy instead."
            ) from None
        roots.append(Path(path))
    return roots
