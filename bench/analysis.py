"""The researcher's actions end to end: upload -> results, grid-cell clicks, heatmaps.

    python bench/analysis.py --n 1000000 [--uploads 5] [--clicks 200] [--keep [--reuse]]
        [--dtype bf16|int8]

What runs is the product's own path: ``create_analysis`` (validation, stored copy, thumbnail,
enqueue) in this process, a real RQ ``ModelWorker`` process on its own queue doing
``run_analysis`` and ``run_heatmaps``, ``rank_cell`` for clicks (stored cell vector ->
pgvector search -> stored ranking), all against a database of N synthetic sentence vectors
built by ``bench/search.py``'s generator (its own database, dropped at the end unless
``--keep``). The model is a ViT-B/32-shaped CLIP with random weights (``bench/common.py``):
speed depends on shapes, not on weight values; ``--dtype`` sets the worker's ``MODEL_DTYPE``
(``bf16`` suits a CPU with native bf16; ``int8`` embeds images with a compiled int8 copy of the
vision tower, compiled before the worker takes its first job). Sentence texts cycle through
the real corpus sample so that the heatmap job tokenises real sentences. Images are the real
paintings in ``../shared/artworks`` (1200 to 3820 px wide).

Measured per painting, as medians over ``--uploads`` repeats:

* upload -> done: wall time from the upload bytes to the analysis being ``done`` (queue, model,
  search, storing), and the worker's share of it (``started_at`` -> ``finished_at``). "Done"
  is the worker's ``finished_at``, stored with the results, not the moment this process
  notices: it looks every 50 ms, as a client would, because looking every few milliseconds
  takes CPU from the worker on a 2-core machine (it cost the worker's model 20-40 ms);
  ``create_analysis_ms`` (validation, stored files, database row, enqueue: the HTTP request's
  work) and ``queue_wait_ms`` (from there to the worker's ``started_at``) split the rest;
  ``queue_and_worker_ms`` is the upload's latency as the targets count it ("queue + model +
  search"): from the job being queued to the results being stored;
* cell click: p50/p95 of ``rank_cell`` over ``--clicks`` random cells of the analyses, and
  of the same clicks through the API (``cell_click_api``: token, middleware, JSON), in process;
* heatmaps: wall time from requesting maps for 5 sentences to the 5 maps being stored (the
  last map's ``created_at``), and the first (uncached) overlay PNG at the painting's own size.

Beside it, the upstream ArteFact algorithm for the same actions on the same model and vectors,
in this process (no queue, favouring it): the whole float32 matrix in memory; an upload is
decode -> ``CLIPProcessor`` -> ``get_image_features`` -> matmul + top-k over all rows, timed in
turn with ours, one of each per repeat, so that a slow spell of the VM falls on both; a cell
click recomputes the patch features of the image and scans the whole matrix (also reported
with the patch features cached, the scan alone); a heatmap is one request per sentence that
decodes the image and runs one forward and backward pass with the upstream variant of
Grad-ECLIP (``method="artefact"``), text encoder included.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artefact_site.settings")

from apps.engine.quantization import choose_int8_kernels  # noqa: E402
from bench import search as corpus_bench  # noqa: E402
from bench.common import (  # noqa: E402
    artwork_paths,
    corpus_sentences,
    finish_report,
    random_vit_b32,
    train_tokenizer,
)

QUEUE = "bench-gpu"
HEATMAP_SENTENCES = 5
K = 25


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(samples_ms, 50)), 2),
        "p95_ms": round(float(np.percentile(samples_ms, 95)), 2),
        "n": len(samples_ms),
    }


def pixel_count(path: Path) -> int:
    with Image.open(path) as image:
        return image.width * image.height


def median_ms(samples_s: list[float]) -> float:
    return round(statistics.median(samples_s) * 1000, 1)


def model_environment(base: Path, adapter: Path | None, dtype: str) -> dict[str, str]:
    """Model settings naming the random ViT-B/32 for both keys, for this process and the worker."""
    return {
        "CLIP_BASE_MODEL": str(base),
        "CLIP_ADAPTER": "",
        "PAINTINGCLIP_BASE_MODEL": str(base),
        "PAINTINGCLIP_ADAPTER": str(adapter or ""),
        "MODEL_DEVICE": "cpu",
        "MODEL_DTYPE": dtype,
        "RQ_GPU_QUEUE": QUEUE,
        "HF_HUB_OFFLINE": "1",
    }


def start_worker(environment: dict[str, str]) -> subprocess.Popen:
    """A real ModelWorker process on the bench database and queue; returns once it has loaded
    its models (it publishes them in Redis)."""
    from django.conf import settings
    from django_rq import get_connection

    from apps.analysis.worker import MODELS_KEY

    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{quote(str(db['HOST']), safe='')}:{db['PORT']}/{db['NAME']}"
    connection = get_connection(QUEUE)
    before = set(connection.hkeys(MODELS_KEY))
    worker = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "manage.py"),
            "rqworker",
            QUEUE,
            "--worker-class",
            "apps.analysis.worker.ModelWorker",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **environment, "DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (set(connection.hkeys(MODELS_KEY)) - before):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("The bench worker did not start; run it by hand to see why.")
        time.sleep(0.2)
    return worker


def wait_for(predicate, timeout: float = 300, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("Timed out waiting for the worker.")
        time.sleep(interval)


def measure_product(
    paintings: list[Path], uploads: int, clicks: int, owner, upstream: Upstream
) -> tuple[dict, dict]:
    """Ours, and upstream's whole-image uploads taken in turn with ours (the worker idles while
    upstream runs), so that the VM's slow spells fall on both sides alike."""
    from django_rq import get_connection
    from rq.job import Job

    from apps.analysis import services
    from apps.analysis.models import Analysis, Heatmap

    rng = random.Random(0)
    report: dict = {}
    theirs: dict = {}
    analyses = []
    for path in paintings:
        data = path.read_bytes()
        walls, requests, waits, after_request, worker_s, stages = [], [], [], [], [], []
        upstream_s = []
        for _ in range(uploads + 1):  # the first one warms the caches
            started = time.perf_counter()
            upstream.upload(data)
            upstream_s.append(time.perf_counter() - started)
            started = time.time()  # wall clock, compared with the worker's finished_at
            analysis = services.create_analysis(
                owner=owner, data=data, filename=path.name, model_key="clip"
            )
            created = time.time()

            def done(pk=analysis.pk) -> bool:
                status = Analysis.objects.values_list("status", flat=True).get(pk=pk)
                if status == Analysis.Status.FAILED:
                    raise SystemExit(Analysis.objects.get(pk=pk).error)
                return status == Analysis.Status.DONE

            wait_for(done)
            analysis.refresh_from_db()
            walls.append(analysis.finished_at.timestamp() - started)
            requests.append(created - started)
            waits.append(analysis.started_at.timestamp() - created)
            after_request.append(analysis.finished_at.timestamp() - created)
            worker_s.append((analysis.finished_at - analysis.started_at).total_seconds())
            stages.append(analysis.timings)
            analyses.append(analysis)
        walls, requests, waits = walls[1:], requests[1:], waits[1:]
        after_request = after_request[1:]
        theirs[path.name] = {"upload_to_done_ms": median_ms(upstream_s[1:])}
        worker_s, stages = worker_s[1:], stages[1:]
        with Image.open(path) as image:
            size = image.size
        report[path.name] = {
            "size": size,
            "bytes": len(data),
            "upload_to_done_ms": median_ms(walls),
            "create_analysis_ms": median_ms(requests),
            "queue_wait_ms": median_ms(waits),
            "queue_and_worker_ms": median_ms(after_request),
            "worker_ms": median_ms(worker_s),
            "worker_stages_ms": {
                stage: median_ms([s[stage] for s in stages])
                for stage in ("read_image", "embed", "search")
            },
        }

    # Two passes of different random cells: the first after the bench's start reads index
    # pages from disk or the OS cache, the second is a server that has been serving.
    for name in ("cell_click_first_pass", "cell_click"):
        samples = []
        for _ in range(clicks):
            analysis = rng.choice(analyses)
            row, col = rng.randrange(7), rng.randrange(7)
            started = time.perf_counter()
            services.rank_cell(analysis, row, col, K)
            samples.append((time.perf_counter() - started) * 1000)
        report[name] = percentiles(samples)
    report["cell_click_api"] = percentiles(api_clicks(analyses, clicks, owner, rng))

    largest = max(analyses, key=lambda a: a.width * a.height)
    hits = services.rank_analysis(largest, largest.embeddings.get(model_key="clip"))
    sentence_ids = [hit.sentence_id for hit in hits[:HEATMAP_SENTENCES]]
    heat_walls, heat_jobs = [], []
    for _ in range(3):
        Heatmap.objects.filter(analysis=largest).delete()
        started = time.time()
        job_id = services.request_heatmaps(largest, sentence_ids)
        stored = Heatmap.objects.filter(analysis=largest)
        wait_for(lambda stored=stored: stored.count() == len(sentence_ids))
        last_stored = max(stored.values_list("created_at", flat=True))
        heat_walls.append(last_stored.timestamp() - started)
        job = Job.fetch(job_id, connection=get_connection(QUEUE))
        wait_for(lambda job=job: job.get_status(refresh=True) == "finished")
        job.refresh()  # the fetched copy may predate `ended_at`; get_status reads only status
        heat_jobs.append((job.ended_at - job.started_at).total_seconds())
    started = time.perf_counter()
    services.render_heatmap_png(Heatmap.objects.filter(analysis=largest).first())
    png_s = time.perf_counter() - started
    report["heatmaps"] = {
        "painting": Path(largest.original_filename).name,
        "sentence_ids": sentence_ids,
        "request_to_stored_ms": median_ms(heat_walls),
        "worker_ms": median_ms(heat_jobs),
        "first_overlay_png_ms": round(png_s * 1000, 1),
    }
    for analysis in Analysis.objects.filter(owner=owner):
        for stored in (analysis.image, analysis.thumbnail, analysis.reduced):
            stored.delete(save=False)
        for heatmap in analysis.heatmaps.all():
            if heatmap.overlay:
                heatmap.overlay.delete(save=False)
    Analysis.objects.filter(owner=owner).delete()
    return report, theirs


def api_clicks(analyses: list, clicks: int, owner, rng: random.Random) -> list[float]:
    """Cell clicks as a client makes them: `GET /api/v1/analyses/{id}/cells/{row}/{col}` with
    a token, through Django's middleware, DRF's authentication and throttling, and the JSON."""
    from django.test import Client

    from apps.accounts.services import create_api_token

    _token, key = create_api_token(owner, "bench")
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    samples = []
    for _ in range(clicks):
        analysis = rng.choice(analyses)
        url = f"/api/v1/analyses/{analysis.id}/cells/{rng.randrange(7)}/{rng.randrange(7)}?k={K}"
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.content[:200]!r}")
    return samples


class Upstream:
    """The upstream algorithm: fp32 model, processor, and the whole matrix in memory."""

    def __init__(self, base: Path, vectors: np.ndarray) -> None:
        from transformers import CLIPModel, CLIPProcessor

        self.model = CLIPModel.from_pretrained(base).eval()
        self.processor = CLIPProcessor.from_pretrained(base)
        self.matrix = torch.from_numpy(vectors)

    def top(self, query: torch.Tensor) -> list[int]:
        scores = self.matrix @ query
        return torch.topk(scores, K).indices.tolist()

    def pixels(self, data: bytes) -> torch.Tensor:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        return self.processor(images=image, return_tensors="pt")["pixel_values"]

    @torch.no_grad()
    def upload(self, data: bytes) -> list[int]:
        features = self.model.get_image_features(pixel_values=self.pixels(data)).pooler_output
        return self.top(F.normalize(features, dim=-1)[0])

    @torch.no_grad()
    def patch_features(self, data: bytes) -> torch.Tensor:
        hidden = self.model.vision_model(pixel_values=self.pixels(data)).last_hidden_state
        patches = self.model.visual_projection(self.model.vision_model.post_layernorm(hidden))
        return F.normalize(patches[0, 1:], dim=-1)

    def cell_click(self, data: bytes, row: int, col: int) -> list[int]:
        return self.top(self.patch_features(data)[row * 7 + col])


def measure_upstream(
    upstream: Upstream, paintings: list[Path], clicks: int, registry, texts: list[str]
) -> dict:
    """Upstream's cell clicks and heatmaps (its uploads are taken in `measure_product`)."""
    from apps import engine

    rng = random.Random(0)
    report: dict = {}

    datas = [path.read_bytes() for path in paintings]
    recomputed, cached = [], []
    patch_cache = {i: upstream.patch_features(data) for i, data in enumerate(datas)}
    for _ in range(max(10, clicks // 10)):
        i, row, col = rng.randrange(len(datas)), rng.randrange(7), rng.randrange(7)
        started = time.perf_counter()
        upstream.cell_click(datas[i], row, col)
        recomputed.append((time.perf_counter() - started) * 1000)
    for _ in range(clicks):
        i, row, col = rng.randrange(len(datas)), rng.randrange(7), rng.randrange(7)
        started = time.perf_counter()
        upstream.top(patch_cache[i][row * 7 + col])
        cached.append((time.perf_counter() - started) * 1000)
    report["cell_click_recomputed"] = percentiles(recomputed)
    report["cell_click_cached_patches"] = percentiles(cached)

    largest = max(paintings, key=pixel_count)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        for text in texts:  # one request per sentence, as upstream's page asks for each map
            image = engine.load_image(largest)
            engine.explanation_maps(image, [text], "clip", method="artefact", registry=registry)
        seconds.append(time.perf_counter() - started)
    report["heatmaps"] = {
        "painting": largest.name,
        "sentences": len(texts),
        "request_to_stored_ms": median_ms(seconds),
    }
    return report


def ratios(ours: dict, theirs: dict, paintings: list[Path]) -> dict:
    out = {
        path.name: round(
            theirs[path.name]["upload_to_done_ms"] / ours[path.name]["upload_to_done_ms"], 2
        )
        for path in paintings
    }
    out["queue_and_worker"] = {
        path.name: round(
            theirs[path.name]["upload_to_done_ms"] / ours[path.name]["queue_and_worker_ms"], 2
        )
        for path in paintings
    }
    out["worker_only"] = {
        path.name: round(theirs[path.name]["upload_to_done_ms"] / ours[path.name]["worker_ms"], 2)
        for path in paintings
    }
    out["cell_click_p95_vs_recomputed"] = round(
        theirs["cell_click_recomputed"]["p95_ms"] / ours["cell_click"]["p95_ms"], 1
    )
    out["cell_click_p95_vs_cached_patches"] = round(
        theirs["cell_click_cached_patches"]["p95_ms"] / ours["cell_click"]["p95_ms"], 1
    )
    out["heatmaps"] = round(
        theirs["heatmaps"]["request_to_stored_ms"] / ours["heatmaps"]["request_to_stored_ms"], 2
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of sentence vectors")
    parser.add_argument("--uploads", type=int, default=5, help="analyses per painting")
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: reuse a kept database of N rows"
    )
    parser.add_argument(
        "--dtype",
        choices=["fp32", "bf16", "int8"],
        default="fp32",
        help="the worker's MODEL_DTYPE",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args()

    paintings = artwork_paths()
    sentences = corpus_sentences()
    if not paintings or not sentences:
        raise SystemExit("bench/analysis.py needs ../shared/artworks and ../shared/corpus-sample.")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    scratch = Path(tempfile.mkdtemp(prefix="artefact-bench-"))
    tokenizer = train_tokenizer(sentences, scratch / "tokenizer")
    base, adapter = random_vit_b32(scratch, tokenizer)
    environment = model_environment(base, adapter, args.dtype)
    os.environ.update(environment)

    data = corpus_bench.generate(args.n)
    reused = corpus_bench.setup_django(args.n, args.keep and args.reuse)
    from django.contrib.auth import get_user_model

    from apps import engine
    from apps.corpus.models import Sentence
    from apps.corpus.vectors import ensure_vector_index

    report: dict = {
        "n": args.n,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.node()} {os.cpu_count()} cores "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "torch_threads": torch.get_num_threads(),
        "worker_dtype": args.dtype,
        "worker_int8_kernels": choose_int8_kernels() if args.dtype == "int8" else None,
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }
    worker = None
    try:
        if not reused:
            corpus_bench.load(data, sentences)
            ensure_vector_index("clip", corpus_bench.DIM)
        owner, _ = get_user_model().objects.get_or_create(username="bench-analysis")
        upstream = Upstream(base, data["vectors"])
        worker = start_worker(environment)
        report["ours"], report["upstream"] = measure_product(
            paintings, args.uploads, args.clicks, owner, upstream
        )
        worker.terminate()
        worker.wait()
        worker = None
        registry = engine.ModelRegistry([engine.ModelSpec("clip", str(base))], device="cpu")
        texts = list(
            Sentence.objects.filter(id__in=report["ours"]["heatmaps"]["sentence_ids"]).values_list(
                "text", flat=True
            )
        )
        report["upstream"] |= measure_upstream(upstream, paintings, args.clicks, registry, texts)
        report["speedup"] = ratios(report["ours"], report["upstream"], paintings)
    finally:
        if worker is not None:
            worker.kill()
        if not args.keep:
            corpus_bench.drop_bench_database()
    finish_report(report, args.out)


if __name__ == "__main__":
    main()
