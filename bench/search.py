"""Corpus search at scale: pgvector (this project) beside the upstream in-memory approach.

    python bench/search.py --n 1000000 [--queries 200] [--keep]

Builds a synthetic corpus of N sentence vectors in a database of its own (``artefact_bench``
on the same PostgreSQL server; dropped at the end unless ``--keep``), with the real schema,
importer COPY code, index service and ``search_sentences`` selector, and measures:

* load and HNSW build time, table and index size on disk, peak RSS of this process;
* p50/p95 latency and recall@25 against exact search for unfiltered, topic-filtered (~20 % of
  sentences) and creator-filtered (~1 %) queries, and whether every filtered query returned 25;
* the upstream ArteFact approach on the same vectors: the whole float32 matrix in memory,
  torch matmul + topk, filters applied by a Python set comprehension over sentence ids.

Generator (why not uniform noise: uniform 512-d vectors have no neighbourhood structure, which
makes any ANN index look far worse than on real CLIP text embeddings, whose intrinsic
dimension is low and which cluster by subject):

* 7,200 works with log-normal sentence counts (a few long books, many short articles);
* 3,000 subject centres in a 48-d latent space; each work draws 3 subjects (Zipf-skewed
  popularity) and each sentence one of its work's subjects plus latent noise;
* latent vectors are mapped to 512-d by a fixed random linear map, plus small isotropic
  noise, then L2-normalised — intrinsic dimension ~48, clustered, like sentence embeddings;
* 400 topics (each work 3 to 15, Zipf-skewed) and 600 creators (one per work, Zipf-skewed); the
  benchmark's topic filter is the set of most popular topics covering ~20 % of sentences, the
  creator filter a set of creators covering ~1 %;
* queries are drawn like sentences (a subject plus noise) but are not in the corpus.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psutil
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artefact_site.settings")

from bench.common import finish_report  # noqa: E402

BENCH_DB = "artefact_bench"
DIM = 512
LATENT = 48
SUBJECTS = 3_000
WORKS = 7_200
TOPICS = 400
CREATORS = 600
K = 25


def generate(n: int, seed: int = 0, dim: int = DIM) -> dict:
    """The synthetic corpus (see the module docstring); vectors float32, L2-normalised, of
    `dim` dimensions (a model's embedding size). Every work has at least one sentence, so
    `n` must be at least `WORKS`."""
    if n < WORKS:
        raise ValueError(
            f"A synthetic corpus has {WORKS:,} works, each with a sentence: ask for at least "
            f"{WORKS:,} sentences, not {n:,}."
        )
    rng = np.random.default_rng(seed)
    sizes = rng.lognormal(mean=0.0, sigma=1.0, size=WORKS)
    counts = np.maximum(1, np.floor(sizes / sizes.sum() * n)).astype(np.int64)
    while counts.sum() < n:
        counts[rng.integers(WORKS)] += 1
    while counts.sum() > n:
        i = rng.integers(WORKS)
        if counts[i] > 1:
            counts[i] -= 1
    popularity = 1.0 / np.arange(1, SUBJECTS + 1) ** 0.8
    popularity /= popularity.sum()
    work_subjects = rng.choice(SUBJECTS, size=(WORKS, 3), p=popularity)
    centres = rng.standard_normal((SUBJECTS, LATENT)).astype(np.float32)
    projection = rng.standard_normal((LATENT, dim)).astype(np.float32) / np.sqrt(LATENT)
    work_of_row = np.repeat(np.arange(WORKS), counts)
    subject_of_row = work_subjects[work_of_row, rng.integers(0, 3, size=n)]
    vectors = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        latent = centres[subject_of_row[start:stop]] + 0.6 * rng.standard_normal(
            (stop - start, LATENT), dtype=np.float32
        )
        block = latent @ projection + 0.15 * rng.standard_normal((stop - start, dim), np.float32)
        vectors[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    topic_weights = 1.0 / np.arange(1, TOPICS + 1) ** 1.1
    topic_weights /= topic_weights.sum()
    work_topics = [
        sorted(set(rng.choice(TOPICS, size=rng.integers(3, 16), p=topic_weights).tolist()))
        for _ in range(WORKS)
    ]
    creator_weights = 1.0 / np.arange(1, CREATORS + 1) ** 1.0
    creator_weights /= creator_weights.sum()
    work_creator = rng.choice(CREATORS, size=WORKS, p=creator_weights)
    queries = centres[rng.choice(SUBJECTS, size=400, p=popularity)] + 0.6 * rng.standard_normal(
        (400, LATENT), dtype=np.float32
    )
    queries = queries @ projection + 0.15 * rng.standard_normal((400, dim), np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return {
        "counts": counts,
        "work_of_row": work_of_row,
        "vectors": vectors,
        "work_topics": work_topics,
        "work_creator": work_creator,
        "queries": queries.astype(np.float32),
    }


def pick_filters(data: dict) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Topic ids covering ~20 % of sentences and creator slugs covering ~1 %, with row masks."""
    counts, n = data["counts"], len(data["work_of_row"])
    topic_rows = np.zeros(TOPICS)
    for work, topics in enumerate(data["work_topics"]):
        topic_rows[topics] += counts[work]
    # Least popular first, adding topics until their works hold ~20 % of the sentences.
    chosen: list[int] = []
    works = np.zeros(WORKS, dtype=bool)
    for topic in np.argsort(topic_rows):
        trial = works | np.array([topic in t for t in data["work_topics"]])
        if counts[trial].sum() > 0.2 * n:
            break
        chosen.append(int(topic))
        works = trial
    topic_mask = works[data["work_of_row"]]
    creator_rows = np.bincount(data["work_creator"], weights=counts, minlength=CREATORS)
    creators: list[int] = []
    total = 0
    for creator in np.argsort(-creator_rows):
        if total + creator_rows[creator] > 0.012 * n:
            continue
        creators.append(int(creator))
        total += creator_rows[creator]
        if total >= 0.009 * n:
            break
    creator_mask = np.isin(data["work_creator"], creators)[data["work_of_row"]]
    return [f"T{t}" for t in chosen], [f"c{c}" for c in creators], topic_mask, creator_mask


def setup_django(n: int, reuse: bool) -> bool:
    """Point Django at the bench database; True if a kept one of `n` rows can be reused."""
    import django
    from django.conf import settings

    from artefact_site.embedded import EmbeddedServices

    EmbeddedServices().acquire()
    import psycopg

    db = settings.DATABASES["default"]
    admin = psycopg.connect(
        dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True
    )
    db["NAME"] = BENCH_DB
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
    if reuse and exists:
        django.setup()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM corpus_sentenceembedding")
            if cursor.fetchone()[0] == n:
                admin.close()
                from django.core.management import call_command

                call_command("migrate", verbosity=0)  # a kept database may predate a migration
                return True
        connection.close()
    admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin.execute(f"CREATE DATABASE {BENCH_DB}")
    admin.close()
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return False


def drop_bench_database() -> None:
    import psycopg
    from django.conf import settings
    from django.db import connection

    connection.close()
    db = settings.DATABASES["default"]
    admin = psycopg.connect(
        dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True
    )
    admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin.close()


def load_works(data: dict, prefix: str = "") -> None:
    """The synthetic corpus's works, creators and topics, each id starting with `prefix`."""
    from apps.corpus.models import Creator, Topic, Work

    Creator.objects.bulk_create(
        Creator(slug=f"{prefix}c{i}", name=f"Creator {i}") for i in range(CREATORS)
    )
    Topic.objects.bulk_create(Topic(id=f"{prefix}T{i}") for i in range(TOPICS))
    Work.objects.bulk_create(
        (Work(id=f"{prefix}W{w}", title=f"Work {w}") for w in range(WORKS)), batch_size=2000
    )
    Work.creators.through.objects.bulk_create(
        (
            Work.creators.through(work_id=f"{prefix}W{w}", creator_id=f"{prefix}c{c}")
            for w, c in enumerate(data["work_creator"])
        ),
        batch_size=5000,
    )
    Work.topics.through.objects.bulk_create(
        (
            Work.topics.through(work_id=f"{prefix}W{w}", topic_id=f"{prefix}T{t}")
            for w, topics in enumerate(data["work_topics"])
            for t in topics
        ),
        batch_size=5000,
    )


def load(
    data: dict,
    texts: list[str] | None = None,
    *,
    prefix: str = "",
    model_keys: Sequence[str] = ("clip",),
) -> dict:
    """Works, creators, topics, sentences and vectors through the project's COPY code.

    Sentence i gets ``texts[i % len(texts)]`` as its text, or a placeholder without ``texts``.
    Every id starts with `prefix` (to add the corpus beside another one); the vectors are
    stored under each of `model_keys`.
    """
    from django.db import connection, transaction

    from apps.corpus.importers.copy import copy_rows, halfvec_payloads
    from apps.corpus.vectors import refresh_published_counts

    started = time.perf_counter()
    load_works(data, prefix)
    ids = [prefix + sentence_id for sentence_id in sentence_ids(data)]
    work_of_row = data["work_of_row"]
    positions = row_positions(data)

    def text_of(i: int) -> str:
        return texts[i % len(texts)] if texts else f"sentence {i}"

    with transaction.atomic(), connection.cursor() as cursor:
        copy_rows(
            cursor,
            "corpus_sentence",
            [
                ("id", "text"),
                ("work_id", "text"),
                ("position", "int4"),
                ("text", "text"),
                ("published", "bool"),
            ],
            (
                (ids[i], f"{prefix}W{work_of_row[i]}", int(positions[i]), text_of(i), True)
                for i in range(len(ids))
            ),
        )
    text_seconds = time.perf_counter() - started
    started = time.perf_counter()
    vectors = data["vectors"]
    for model_key in model_keys:
        for start in tqdm(
            range(0, len(ids), 50_000), desc=f"vectors ({model_key})", unit="block", leave=False
        ):
            stop = min(len(ids), start + 50_000)
            with transaction.atomic(), connection.cursor() as cursor:
                copy_rows(
                    cursor,
                    "corpus_sentenceembedding",
                    [
                        ("model", "text"),
                        ("sentence_id", "text"),
                        ("work_id", "text"),
                        ("searchable", "bool"),
                        ("embedding", "halfvec"),
                    ],
                    (
                        (
                            model_key,
                            ids[start + j],
                            f"{prefix}W{work_of_row[start + j]}",
                            True,
                            payload,
                        )
                        for j, payload in enumerate(halfvec_payloads(vectors[start:stop]))
                    ),
                )
    vector_seconds = time.perf_counter() - started
    refresh_published_counts([f"{prefix}W{w}" for w in range(WORKS)])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE corpus_sentenceembedding")
    return {"load_text_s": text_seconds, "load_vectors_s": vector_seconds}


def sentence_ids(data: dict) -> list[str]:
    positions = row_positions(data)
    return [f"W{w}_s{p:04d}" for w, p in zip(data["work_of_row"], positions, strict=True)]


def row_positions(data: dict) -> np.ndarray:
    counts = data["counts"]
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(len(data["work_of_row"])) - starts + 1


def exact_top(vectors16: np.ndarray, query: np.ndarray, mask: np.ndarray | None) -> set[int]:
    scores = vectors16 @ query
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    top = np.argpartition(-scores, K)[:K]
    return set(top.tolist())


def measure_pgvector(data: dict, filters: dict, queries: np.ndarray, warmup: np.ndarray) -> dict:
    """Latency and recall per filter kind, measured after the `warmup` queries (a server that
    has been answering other queries); the warm-up's own latencies are reported as the cold
    start (the first queries after the server started)."""
    from django.db import connection

    from apps.corpus import selectors

    ids = sentence_ids(data)
    index_of = {sid: i for i, sid in enumerate(ids)}
    # Ground truth on the vectors as stored (half precision), rows are L2-normalised.
    vectors16 = data["vectors"].astype(np.float16).astype(np.float32)
    vectors16 /= np.linalg.norm(vectors16, axis=1, keepdims=True)
    results = {}
    for kind, (kwargs, _) in filters.items():
        cold = []
        for query in warmup:
            started = time.perf_counter()
            selectors.search_sentences(query, "clip", k=K, **kwargs)
            cold.append((time.perf_counter() - started) * 1000)
        results[f"{kind} (cold start)"] = {
            "p50_ms": float(np.percentile(cold, 50)),
            "p95_ms": float(np.percentile(cold, 95)),
            "queries": len(cold),
        }
    for kind, (kwargs, mask) in filters.items():
        latencies, recalls, short = [], [], 0
        for query in queries:
            started = time.perf_counter()
            hits = selectors.search_sentences(query, "clip", k=K, **kwargs)
            latencies.append((time.perf_counter() - started) * 1000)
            truth = exact_top(vectors16, query, mask)
            recalls.append(len(truth & {index_of[h.sentence_id] for h in hits}) / K)
            short += len(hits) < K
        results[kind] = {
            "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)),
            "recall_at_25": float(np.mean(recalls)),
            "queries_short_of_25": int(short),
            "matching_rows": int(mask.sum()) if mask is not None else len(ids),
        }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('corpus_sentenceembedding'),"
            " pg_relation_size('corpus_embedding_hnsw_clip_512'),"
            " pg_relation_size('corpus_sentenceembedding'),"
            " pg_total_relation_size('corpus_sentence')"
        )
        total, index, heap, sentences = cursor.fetchone()
    results["disk"] = {
        "embedding_table_with_indexes_mb": total / 2**20,
        "hnsw_index_mb": index / 2**20,
        "embedding_heap_mb": heap / 2**20,
        "sentence_table_mb": sentences / 2**20,
    }
    return results


def measure_upstream(data: dict, filters: dict, queries: np.ndarray) -> dict:
    """Upstream ArteFact: float32 matrix + id list in memory, torch matmul + topk, set filter."""
    import torch

    from apps.corpus.selectors import count_matching_works

    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    ids = sentence_ids(data)
    matrix = torch.from_numpy(data["vectors"].copy())
    resident = process.memory_info().rss - before
    torch.set_num_threads(2)
    results = {"resident_mb": resident / 2**20}
    for kind, (kwargs, _) in filters.items():
        works = set(count_matching_works(**kwargs)) if kwargs else None
        latencies = []
        for query in queries[:50]:
            started = time.perf_counter()
            scores = matrix @ torch.from_numpy(query)
            if works is not None:
                allowed = [i for i, sid in enumerate(ids) if sid.split("_s")[0] in works]
                keep = torch.tensor(allowed, dtype=torch.long)
                _, order = torch.topk(scores[keep], min(K, len(allowed)))
                keep[order].tolist()
            else:
                _, order = torch.topk(scores, K)
            latencies.append((time.perf_counter() - started) * 1000)
        results[kind] = {
            "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)),
        }
    del matrix
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=250_000, help="number of sentence vectors")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the artefact_bench database")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: reuse a kept database of N rows"
    )
    parser.add_argument("--skip-upstream", action="store_true", help="measure pgvector only")
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args()

    started = time.perf_counter()
    data = generate(args.n)
    generate_s = time.perf_counter() - started
    topics, creators, topic_mask, creator_mask = pick_filters(data)
    reused = setup_django(args.n, args.keep and args.reuse)
    from apps.corpus.vectors import ensure_vector_index

    report: dict = {
        "n": args.n,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.node()} {os.cpu_count()} cores "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB {platform.processor() or ''}".strip(),
        "generate_s": generate_s,
        "load_average_start": os.getloadavg(),
    }
    try:
        if reused:
            report["reused_database"] = True
        else:
            report |= load(data)
            started = time.perf_counter()
            ensure_vector_index("clip", DIM)
            report["hnsw_build_s"] = time.perf_counter() - started
        filters = {
            "unfiltered": ({}, None),
            "topic ~20%": ({"topics": topics}, topic_mask),
            "creator ~1%": ({"creators": creators}, creator_mask),
        }
        queries = data["queries"][: args.queries]
        warmup = data["queries"][args.queries :]
        report["pgvector"] = measure_pgvector(data, filters, queries, warmup)
        if not args.skip_upstream:
            report["upstream"] = measure_upstream(data, filters, queries)
    finally:
        if not args.keep:
            drop_bench_database()
    finish_report(report, args.out)


if __name__ == "__main__":
    main()
