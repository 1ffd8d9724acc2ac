"""Import at scale: time and peak memory of ``import_corpus`` on a generated dataset.

    python bench/import_scale.py --n 300000 [--models clip,paintingclip]

Writes a dataset in the public ArteFact layout under ``bench/_work/import-<n>/`` — works.json,
creators.json, topics.json, a ``sentences.json`` of N entries and per model an N x 512 float32
``<model>_embeddings.safetensors`` with its id list — then runs ``manage.py import_corpus`` on
it in a child process against a database of its own (``artefact_import_bench``, dropped at
the end) and reports wall time per run and the child's peak RSS. A second run over the same
files shows the cost of an idempotent re-run. The files are written as streams too, so the
generator itself stays small.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artefact_site.settings")

DB_NAME = "artefact_import_bench"
WORKS = 7_200
DIM = 512


def write_dataset(root: Path, n: int, models: list[str]) -> None:
    """The layout of the public datasets, with n sentences spread over 7,200 works."""
    rng = np.random.default_rng(0)
    json_dir = root / "json_info"
    json_dir.mkdir(parents=True, exist_ok=True)
    counts = np.full(WORKS, n // WORKS)
    counts[: n % WORKS] += 1
    works = {
        f"W{w}": {
            "Artist": f"creator_{w % 300}",
            "Link": "",
            "Number of Sentences": int(counts[w]),
            "DOI": "",
            "ImageIDs": [],
            "TopicIDs": [f"C{w % 400}", f"C{(w * 7) % 400}"],
            "Relevance": 1.0,
            "Author_Name": "Someone",
            "Work_Title": f"Work {w}",
            "Year": "2000",
            "BibTeX": "",
        }
        for w in range(WORKS)
    }
    (json_dir / "works.json").write_text(json.dumps(works))
    creators: dict[str, list[str]] = {}
    for w in range(WORKS):
        creators.setdefault(f"creator_{w % 300}", []).append(f"W{w}")
    (json_dir / "creators.json").write_text(json.dumps(creators))
    topics: dict[str, list[str]] = {}
    for work_id, work in works.items():
        for topic in work["TopicIDs"]:
            topics.setdefault(topic, []).append(work_id)
    (json_dir / "topics.json").write_text(json.dumps(topics))
    ids = [f"W{w}_s{p:04d}" for w in range(WORKS) for p in range(1, counts[w] + 1)]
    with (json_dir / "sentences.json").open("w") as handle:
        handle.write("{")
        for i, sentence_id in enumerate(ids):
            entry = {
                "English Original": f"Sentence {i} of the generated corpus, about painting.",
                "Has CLIP Embedding": True,
                "Has PaintingCLIP Embedding": True,
            }
            handle.write(("," if i else "") + f"\n{json.dumps(sentence_id)}: {json.dumps(entry)}")
        handle.write("\n}\n")
    for model in models:
        header = json.dumps(
            {"embeddings": {"dtype": "F32", "shape": [n, DIM], "data_offsets": [0, n * DIM * 4]}}
        ).encode()
        header += b" " * (-len(header) % 8)
        with (root / f"{model}_embeddings.safetensors").open("wb") as handle:
            handle.write(len(header).to_bytes(8, "little") + header)
            for start in range(0, n, 50_000):
                block = rng.standard_normal((min(50_000, n - start), DIM), dtype=np.float32)
                handle.write(block.tobytes())
        (root / f"{model}_embeddings_sentence_ids.json").write_text(json.dumps(ids))


def database_url(name: str) -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{quote(db['HOST'] or '', safe='')}:{db['PORT'] or 5432}/{name}"


def admin_connection():
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True
    )


def run_import(root: Path, env: dict[str, str]) -> dict:
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "manage.py", "import_corpus", "--source", str(root), "--no-progress"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        "wall_s": time.perf_counter() - started,
        "summary": child.stdout.strip().splitlines()[:6],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--models", default="clip")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    root = REPO_ROOT / "bench" / "_work" / f"import-{args.n}"
    if not (root / "json_info" / "sentences.json").is_file():
        write_dataset(root, args.n, models)

    import django

    from artefact_site.embedded import EmbeddedServices

    EmbeddedServices().acquire()
    django.setup()
    admin = admin_connection()
    admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    admin.execute(f"CREATE DATABASE {DB_NAME}")
    env = os.environ | {"DATABASE_URL": database_url(DB_NAME)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO_ROOT, env=env, check=True
    )
    report = {"n": args.n, "models": models, "load_average_start": os.getloadavg()}
    try:
        report["first_run"] = run_import(root, env)
        report["second_run"] = run_import(root, env)
        report["peak_rss_mb_of_imports"] = (
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        )
        report["source_mb"] = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
