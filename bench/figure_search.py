"""Figure search at the size of the public dataset: HNSW beside the exact scan.

    python bench/figure_search.py --n 250000 [--queries 200] [--keep]

The public ArteFact dataset holds 239,996 figure images. This builds N synthetic figure
vectors (512-d, clustered like CLIP image embeddings: the generator of `bench/search.py`,
whose works, topics and creators it shares) in a database of its own (``artefact_bench``,
dropped at the end unless ``--keep``), with the real schema: `WorkImage` rows, their
`FigureEmbedding` rows through the importer's COPY code, and the figure table's HNSW index
through `ensure_vector_index(table=FIGURES)`. It measures

* load time and HNSW build time, table and index size on disk;
* `search_figures` (k = 10): p50/p95 latency and recall@10 against the exact top 10 of the
  stored (half-precision) vectors, unfiltered, topic-filtered (~20 % of figures) and
  creator-filtered (~1 %), and how many queries returned fewer than 10;
* the exact scan the selector falls back to (the same SQL, ordered by the exact score, which
  no index serves), unfiltered: what every query would cost without the index.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import psutil
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artefact_site.settings")

from bench.common import finish_report  # noqa: E402
from bench.search import (  # noqa: E402
    DIM,
    drop_bench_database,
    generate,
    load_works,
    pick_filters,
    setup_django,
)

K = 10
MODEL = "clip"


def load(data: dict) -> dict:
    """Works, creators, topics, figures and their vectors, through the project's COPY code."""
    from django.db import connection, transaction

    from apps.corpus.importers.copy import copy_rows, halfvec_payloads
    from apps.corpus.models import WorkImage
    from apps.corpus.vectors import FIGURES

    started = time.perf_counter()
    load_works(data)
    work_of_row = data["work_of_row"]
    with transaction.atomic(), connection.cursor() as cursor:
        copy_rows(
            cursor,
            WorkImage._meta.db_table,
            [
                ("work_id", "text"),
                ("name", "text"),
                ("position", "int4"),
                ("image", "text"),
                ("caption", "text"),
                ("citation", "text"),
                ("thumbnail", "text"),
            ],
            (
                (f"W{w}", f"figure-{i}.jpg", i, f"corpus/images/figure-{i}.jpg", "", "", "")
                for i, w in enumerate(work_of_row)
            ),
        )
    figure_ids = list(WorkImage.objects.order_by("position").values_list("id", flat=True))
    rows_s = time.perf_counter() - started
    started = time.perf_counter()
    vectors = data["vectors"]
    with tqdm(total=len(figure_ids), unit="vec", desc="figure vectors") as bar:
        for start in range(0, len(figure_ids), 50_000):
            stop = min(len(figure_ids), start + 50_000)
            with transaction.atomic(), connection.cursor() as cursor:
                copy_rows(
                    cursor,
                    FIGURES.name,
                    [
                        ("model", "text"),
                        ("figure_id", "int8"),
                        ("work_id", "text"),
                        ("searchable", "bool"),
                        ("embedding", "halfvec"),
                    ],
                    (
                        (MODEL, figure_ids[start + j], f"W{work_of_row[start + j]}", True, payload)
                        for j, payload in enumerate(halfvec_payloads(vectors[start:stop]))
                    ),
                )
            bar.update(stop - start)
    vectors_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {FIGURES.name}")
    return {"load_rows_s": rows_s, "load_vectors_s": vectors_s, "figure_ids": figure_ids}


def exact_top(vectors16: np.ndarray, query: np.ndarray, mask: np.ndarray | None) -> set[int]:
    scores = vectors16 @ query
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    return set(np.argpartition(-scores, K)[:K].tolist())


def percentiles(latencies: list[float]) -> dict:
    return {
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
        "queries": len(latencies),
    }


def measure(data: dict, figure_ids: list[int], filters: dict, queries: np.ndarray) -> dict:
    from django.db import connection

    from apps.corpus.selectors import _nearest_rows, search_figures
    from apps.corpus.vectors import FIGURES

    row_of = {figure: i for i, figure in enumerate(figure_ids)}
    vectors16 = data["vectors"].astype(np.float16).astype(np.float32)
    vectors16 /= np.linalg.norm(vectors16, axis=1, keepdims=True)
    for query in queries[:20]:  # warm the index's pages into the buffer cache
        search_figures(query, MODEL, k=K)
    results: dict = {}
    for kind, (kwargs, mask) in filters.items():
        latencies, recalls, short = [], [], 0
        for query in tqdm(queries, desc=kind, unit="query"):
            started = time.perf_counter()
            hits = search_figures(query, MODEL, k=K, **kwargs)
            latencies.append((time.perf_counter() - started) * 1000)
            truth = exact_top(vectors16, query, mask)
            recalls.append(len(truth & {row_of[hit.figure_id] for hit in hits}) / K)
            short += len(hits) < K
        results[kind] = percentiles(latencies) | {
            "recall_at_10": float(np.mean(recalls)),
            "queries_short_of_10": short,
            "matching_figures": int(mask.sum()) if mask is not None else len(figure_ids),
        }
    latencies = []
    for query in tqdm(queries[:40], desc="exact scan", unit="query"):
        started = time.perf_counter()
        _nearest_rows(query, MODEL, K, FIGURES, work_ids=None, exact=True)
        latencies.append((time.perf_counter() - started) * 1000)
    results["exact scan, unfiltered"] = percentiles(latencies)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_total_relation_size('{FIGURES.name}'),"
            f" pg_relation_size('{FIGURES.index_prefix}_{MODEL}_{DIM}')"
        )
        total, index = cursor.fetchone()
    results["disk"] = {
        "figure_table_with_indexes_mb": total / 2**20,
        "hnsw_index_mb": index / 2**20,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=250_000, help="number of figure vectors")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the artefact_bench database")
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args()

    started = time.perf_counter()
    data = generate(args.n)
    report: dict = {
        "n": args.n,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.node()} {os.cpu_count()} cores "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "generate_s": time.perf_counter() - started,
        "load_average_start": os.getloadavg(),
    }
    topics, creators, topic_mask, creator_mask = pick_filters(data)
    setup_django(args.n, reuse=False)
    from apps.corpus.vectors import FIGURES, ensure_vector_index

    try:
        loaded = load(data)
        figure_ids = loaded.pop("figure_ids")
        report |= loaded
        started = time.perf_counter()
        ensure_vector_index(MODEL, DIM, progress=True, table=FIGURES)
        report["hnsw_build_s"] = time.perf_counter() - started
        filters = {
            "unfiltered": ({}, None),
            "topic ~20%": ({"topics": topics}, topic_mask),
            "creator ~1%": ({"creators": creators}, creator_mask),
        }
        report["search_figures"] = measure(
            data, figure_ids, filters, data["queries"][: args.queries]
        )
    finally:
        if not args.keep:
            drop_bench_database()
    finish_report(report, args.out)


if __name__ == "__main__":
    main()
