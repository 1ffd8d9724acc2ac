"""``manage.py export_corpus --dest DIR``: write the corpus out in the ArteFact layout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.corpus import services


class Command(BaseCommand):
    help = (
        "Write json_info/*.json, marker_output/<W>/ and <model>_embeddings.safetensors with "
        "their id lists, so that import_corpus of the folder reproduces this corpus."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dest", type=Path, required=True, help="an empty or new folder")
        parser.add_argument(
            "--published-only", action="store_true", help="leave unpublished works out"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args: Any, **options: Any) -> None:
        dest: Path = options["dest"]
        if dest.exists() and any(dest.iterdir()):
            raise CommandError(f"{dest} is not empty; export into a new folder")
        counts = services.export_corpus(
            dest,
            published_only=options["published_only"],
            progress=not options["no_progress"] and sys.stderr.isatty(),
        )
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count}")
