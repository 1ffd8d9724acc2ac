"""``manage.py embed_corpus --model clip|paintingclip|all [--figures]``: embed sentences (or,
with ``--figures``, the figure images) lacking vectors."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from apps.corpus import figures, selectors
from apps.corpus.models import Sentence, WorkImage
from apps.corpus.vectors import store_embeddings
from apps.engine import embed_texts_multi, get_registry
from apps.engine.config import model_keys


def _default_slice() -> int:
    """About 3 minutes of work per commit on a CPU, a few seconds on a GPU (where the engine
    only pipelines tokenising and embedding within one call)."""
    return 8192 if get_registry().device.type == "cpu" else 131_072


class Command(BaseCommand):
    help = (
        "Embed every sentence that has no vector for the model(s), slice by slice (committed "
        "as it goes, so an interrupted run resumes), through the engine's batch API."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", required=True, help="a model key, or 'all'")
        parser.add_argument(
            "--slice",
            type=int,
            help="sentences per commit (default: 8,192 on a CPU; 131,072 on a GPU, where a "
            "slice must be long enough for tokenising to overlap the model)",
        )
        parser.add_argument(
            "--batch-size", type=int, help="sentences per forward (default: the engine's)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument(
            "--figures",
            action="store_true",
            help="embed the figure images (vision tower) instead of the sentences; slices "
            f"default to {figures.DEFAULT_SLICE} figures",
        )
        parser.add_argument(
            "--again",
            action="store_true",
            help="with --figures: delete the figures' vectors of these models first and embed "
            "every figure again (after changing ANALYSIS_WHOLE_IMAGE or FIGURE_WHITE_BALANCE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        known = model_keys()
        keys = known if options["model"] == "all" else [options["model"]]
        if not set(keys) <= set(known):
            raise CommandError(f"unknown model {options['model']!r}; known: {', '.join(known)}")
        if options["again"] and not options["figures"]:
            raise CommandError("--again applies to the figures only: give --figures too.")
        if options["figures"]:
            if options["again"]:
                deleted = figures.forget_figure_vectors(keys)
                self.stdout.write(f"figure embeddings: {deleted} deleted")
            self._embed_figures(keys, options)
            return
        slice_size = options["slice"] or _default_slice()
        total = Sentence.objects.count()
        done = {key: 0 for key in keys}
        after = ""
        progress = not options["no_progress"] and sys.stderr.isatty()
        with tqdm(total=total, unit=" sentences", disable=not progress) as bar:
            while True:
                rows = selectors.list_sentences_missing_embeddings(
                    keys, after=after, limit=slice_size
                )
                if not rows:
                    break
                after = rows[-1][0]
                # Length-sorted batches pad least; the engine keeps the input order in its output.
                rows.sort(key=lambda row: len(row[1]))
                needed = sorted({key for _, _, missing in rows for key in missing})
                vectors = embed_texts_multi(
                    [text for _, text, _ in rows], needed, batch_size=options["batch_size"]
                )
                for key in needed:
                    picked = [i for i, (_, _, missing) in enumerate(rows) if key in missing]
                    ids = [rows[i][0] for i in picked]
                    done[key] += store_embeddings(key, ids, np.asarray(vectors[key])[picked])
                bar.update(len(rows))
        for key in keys:
            self.stdout.write(f"embeddings[{key}]: {done[key]} written")

    def _embed_figures(self, keys: list[str], options: dict[str, Any]) -> None:
        """Embed the figures slice by slice; an unreadable image is named on stderr as it is
        met, the others go on, and the run then fails (exit status 1) naming how many."""
        progress = not options["no_progress"] and sys.stderr.isatty()

        def unreadable(figure: WorkImage, reason: str) -> None:
            tqdm.write(
                f"embed_corpus: cannot read figure {figure.pk} ({figure.image.name}): {reason}",
                file=sys.stderr,
            )

        with tqdm(
            total=selectors.count_figures_missing_embeddings(keys),
            unit=" figures",
            disable=not progress,
        ) as bar:
            run = figures.embed_figures(
                keys,
                slice_size=options["slice"] or figures.DEFAULT_SLICE,
                batch_size=options["batch_size"],
                on_error=unreadable,
                on_slice=bar.update,
            )
        for key in keys:
            self.stdout.write(f"figure embeddings[{key}]: {run.written[key]} written")
        if run.unreadable:
            names = ", ".join(figure.image.name for figure, _ in run.unreadable[:5])
            more = len(run.unreadable) - 5
            raise CommandError(
                f"{len(run.unreadable)} figure image(s) could not be read and have no vector: "
                f"{names}{f' and {more} more' if more > 0 else ''}"
            )
