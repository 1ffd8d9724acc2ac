"""``manage.py library_cleanup [--delete]``: stored analysis files that no row names."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.library import selectors, services


class Command(BaseCommand):
    help = (
        "Report the files under the analysis upload folders of MEDIA_ROOT (uploads, "
        "thumbnails, reduced copies, heat-map overlays) that no analysis or heat map names; "
        "with --delete, remove them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--delete", action="store_true", help="remove the files found")
        parser.add_argument(
            "--min-age",
            type=float,
            default=3600,
            help="seconds a file must be old to count (default 3600: an upload's files are "
            "written just before its row commits)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        orphans = selectors.list_orphaned_files(min_age_seconds=options["min_age"])
        for path in orphans.paths:
            self.stdout.write(str(path.relative_to(orphans.media_root)))
        summary = (
            f"{len(orphans.paths)} of {orphans.scanned} files under "
            f"{', '.join(orphans.roots)} are referenced by no row "
            f"({orphans.bytes / 1_000_000:.1f} MB)"
        )
        if options["delete"]:
            deleted = services.delete_orphaned_files(orphans)
            self.stdout.write(f"{summary}; deleted {deleted}.")
        else:
            self.stdout.write(f"{summary}; run with --delete to remove them.")
