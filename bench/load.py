"""Load on the whole stack over loopback: researchers reading, researchers uploading, and the
memory of every process over many requests.

Starts the stack exactly as `make run` does (`python -m artefact_site.stack`: the demo world,
two gunicorn workers with four threads each, one model worker) on a fresh data folder, signs in
one account per simulated researcher, and runs three phases:

1. **Reading** at each `--users` level for `--seconds`: each researcher sends requests back to
   back, drawn from cell clicks (API), analysis pages (the portal's HTML), text searches (the
   API; a third of the texts new, the rest asked before) and work pages (HTML). Throughput, the
   error rate and p50/p95 per kind.
2. **Uploads** from `--upload-users` researchers at once, `--uploads` each, with one model
   worker and then with `--extra-workers` more: how long an upload takes to be accepted and to
   be done, and analyses per minute.
3. **Large uploads**: `--large-uploads` researchers send a 7000 × 7000 px PNG (about 200 kB)
   at once, each retrying a 503 `busy` as the sentence says, while `/healthz` is asked four
   times a second: how long each upload takes to be accepted and to be done, and how long the
   health check waits meanwhile.
4. **Memory**: the RSS of each web worker and the model worker before and after
   `--rss-requests` more reading requests, sampled every tenth of them.

With `--sentences N` the demo corpus is first grown by N synthetic sentences under each model
key (the vectors of `bench/search.py`, in the demo model's 128 dimensions; the HNSW indexes
rebuilt over all of them), so that every search, cell click and ranking searches that many.

    python bench/load.py                  # 10 and 50 researchers, 60 s each; 5 uploading
    python bench/load.py --sentences 1000000
    python bench/load.py --phases large   # one phase alone
    python bench/load.py --quick          # what CI runs: small and short, fails on any error

Exits non-zero when any request failed (a status other than 2xx) in any phase. Only loopback
addresses are contacted, and every phase is bounded in time or count.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.web_tier import WORDS, Client, Stack, cpu_name, percentile, prepare, scene_png  # noqa: E402

PHASES = ("reading", "uploads", "large", "memory")

ACCOUNTS_SCRIPT = """
import json, os
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from apps.accounts.services import create_api_token
accounts = []
prefix, count = os.environ["LOAD_ACCOUNTS"].split(":")
for i in range(int(count)):
    user, _ = get_user_model().objects.get_or_create(username=f"load-{prefix}-{i}")
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    accounts.append({"token": create_api_token(user, "load")[1], "session": session.session_key})
print(json.dumps(accounts))
"""

GROW_SCRIPT = """
import os, time
from bench.search import generate, load
from apps.corpus.vectors import drop_vector_index, ensure_vector_index
from apps.engine.config import model_keys
n, dim = int(os.environ["LOAD_GROW"]), 128
keys = list(model_keys())
for key in keys:
    drop_vector_index(key)
started = time.perf_counter()
load(generate(n, seed=0, dim=dim), prefix="syn-", model_keys=keys)
loaded = time.perf_counter() - started
for key in keys:
    ensure_vector_index(key, dim, progress=True)
print(f"grown by {n:,} sentences per model in {loaded:.0f} s, "
      f"indexes in {time.perf_counter() - started - loaded:.0f} s", flush=True)
"""


class Researcher(Client):
    """A signed-in researcher: the API with a token, the portal's pages with a session."""

    def __init__(self, port: int, token: str, session: str) -> None:
        super().__init__(port, token)
        self.cookie = f"sessionid={session}"

    def page(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path, headers={"Cookie": self.cookie})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def accounts(stack: Stack, count: int, prefix: str) -> list[dict]:
    """`count` new accounts, each with an API token and a signed-in session."""
    result = subprocess.run(
        [
            str(stack.checkout / ".venv/bin/python"),
            "manage.py",
            "shell",
            "-c",
            ACCOUNTS_SCRIPT,
        ],
        cwd=stack.checkout,
        env={**stack.env, "LOAD_ACCOUNTS": f"{prefix}:{count}"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


class Tally:
    """Latencies by request kind and statuses, shared by the researchers' threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[int, int] = defaultdict(int)
        self.failed: dict[str, int] = defaultdict(int)

    def add(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.seconds[kind].append(seconds)
            self.statuses[status] += 1
            if not 200 <= status < 300:
                self.failed[f"{kind} {status}"] += 1

    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def report(self, elapsed: float) -> dict:
        total = sum(self.statuses.values())
        return {
            "requests": total,
            "requests_per_s": round(total / elapsed, 1),
            "error_rate": round(self.errors() / total, 4) if total else None,
            "statuses": dict(sorted(self.statuses.items())),
            "failed": dict(self.failed),
            "ms": {kind: summary(values) for kind, values in sorted(self.seconds.items())},
        }


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": round(statistics.median(values) * 1000, 1),
        "p95": round(percentile(values, 0.95) * 1000, 1),
    }


class Reading:
    """The mix of reading requests, over the prepared analyses, sentences and works."""

    def __init__(self, grids: dict[str, tuple[int, int]], works: list[str]) -> None:
        self.grids, self.analyses, self.works = grids, list(grids), works
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def one(self, researcher: Researcher, rng: random.Random, tally: Tally) -> None:
        kind = rng.choice(["cell", "cell", "analysis_page", "search", "work_page"])
        analysis = rng.choice(self.analyses)
        if kind == "cell":
            rows, cols = self.grids[analysis]
            row, col = rng.randrange(rows), rng.randrange(cols)
            path, send = f"/api/v1/analyses/{analysis}/cells/{row}/{col}?k=10", researcher.get
        elif kind == "analysis_page":
            path, send = f"/analyses/{analysis}/", researcher.page
        elif kind == "work_page":
            path, send = f"/works/{rng.choice(self.works)}/", researcher.page
        else:
            with self.lock:
                repeat = bool(self.asked) and rng.random() < 2 / 3
                text = rng.choice(self.asked) if repeat else " ".join(rng.sample(WORDS, 3))
                self.asked.append(text)
            query = urllib.parse.quote(text)
            path, send = f"/api/v1/search?q={query}&model=paintingclip&k=10", researcher.get
        begun = time.perf_counter()
        status, _ = send(path)
        tally.add(kind, status, time.perf_counter() - begun)


def read_for(
    researchers: list[Researcher], reading: Reading, *, seconds: float | None, requests: int = 0
) -> tuple[Tally, float]:
    """Every researcher reads back to back for `seconds`, or until `requests` were sent."""
    tally = Tally()
    sent = iter(range(requests)) if requests else None
    deadline = time.monotonic() + (seconds or 0)
    counter_lock = threading.Lock()
    progress = tqdm(total=requests or None, unit="req", leave=False, mininterval=5)

    def keep_reading(index: int) -> None:
        rng = random.Random(index)
        while True:
            if sent is not None:
                with counter_lock:
                    if next(sent, None) is None:
                        return
            elif time.monotonic() >= deadline:
                return
            reading.one(researchers[index], rng, tally)
            progress.update()

    started = time.monotonic()
    with ThreadPoolExecutor(len(researchers)) as pool:
        list(pool.map(keep_reading, range(len(researchers))))
    progress.close()
    return tally, time.monotonic() - started


def upload_when_free(researcher: Researcher, image: bytes, busy: list[int]) -> str:
    """Upload as a client should: a 503 `busy` (the web process is decoding as many uploads
    as it may) is tried again a second later, up to five times; `busy` counts the retries."""
    for attempt in range(6):
        try:
            return researcher.upload(image)
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == 5 or json.load(error)["error"] != "busy":
                raise
            busy.append(1)
            time.sleep(1)
    raise AssertionError("unreachable")


class Uploads:
    """Uploads sent and waited for from many threads: how long each took to be accepted and
    to be done, and the statuses (202 for done, 500 for an analysis that failed)."""

    def __init__(self) -> None:
        self.accepted: list[float] = []
        self.finished: list[float] = []
        self.statuses: dict[int, int] = defaultdict(int)
        self.busy: list[int] = []
        self.lock = threading.Lock()

    def send(self, researcher: Researcher, image: bytes, timeout: float = 300) -> None:
        begun = time.perf_counter()
        try:
            analysis_id = upload_when_free(researcher, image, self.busy)
        except urllib.error.HTTPError as error:
            with self.lock:
                self.statuses[error.code] += 1
            return
        took = time.perf_counter() - begun
        body = json.loads(
            researcher.wait_for(
                f"/api/v1/analyses/{analysis_id}",
                lambda status, body: json.loads(body)["status"] in ("done", "failed"),
                timeout=timeout,
            )
        )
        with self.lock:
            self.accepted.append(took)
            self.finished.append(time.perf_counter() - begun)
            self.statuses[202 if body["status"] == "done" else 500] += 1

    def report(self) -> dict:
        return {
            "statuses": dict(self.statuses),
            "accepted_ms": summary(self.accepted) if self.accepted else {},
            "done_ms": summary(self.finished) if self.finished else {},
            "busy_retries": len(self.busy),
        }


def upload_phase(researchers: list[Researcher], uploads: int) -> dict:
    """Each researcher uploads `uploads` scenes one after another and waits for each."""
    sent = Uploads()

    def upload_all(index: int) -> None:
        for n in range(uploads):
            sent.send(researchers[index], scene_png(1000 + index * uploads + n))

    started = time.monotonic()
    with ThreadPoolExecutor(len(researchers)) as pool:
        list(pool.map(upload_all, range(len(researchers))))
    elapsed = time.monotonic() - started
    return {
        "uploads": len(researchers) * uploads,
        **sent.report(),
        "analyses_per_minute": round(len(sent.finished) / elapsed * 60, 1),
    }


def large_png() -> bytes:
    """7000 × 7000 px (49 Mpx, under ANALYSIS_MAX_PIXELS) in about 200 kB: blocks of flat
    colour compress to almost nothing, and decoding them costs as much as any 49 Mpx."""
    from PIL import Image

    rng = random.Random(7)
    blocks = Image.new("RGB", (70, 70))
    blocks.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(70 * 70)])
    buffer = io.BytesIO()
    blocks.resize((7000, 7000), Image.Resampling.NEAREST).save(buffer, "PNG")
    return buffer.getvalue()


def large_upload_phase(stack: Stack, researchers: list[Researcher]) -> dict:
    """Every researcher sends one large PNG at once; `/healthz` is timed meanwhile."""
    image = large_png()
    sent, health = Uploads(), []
    uploading = threading.Event()
    uploading.set()

    def check_health() -> None:
        while uploading.is_set():
            begun = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/healthz", timeout=120):
                health.append(time.perf_counter() - begun)
            time.sleep(0.25)

    checker = threading.Thread(target=check_health)
    checker.start()
    started = time.monotonic()
    with ThreadPoolExecutor(len(researchers)) as pool:
        list(pool.map(lambda researcher: sent.send(researcher, image, timeout=900), researchers))
    elapsed = time.monotonic() - started
    uploading.clear()
    checker.join()
    return {
        "uploads": len(researchers),
        "bytes": len(image),
        **sent.report(),
        "accepted_max_ms": round(max(sent.accepted) * 1000, 1) if sent.accepted else None,
        "healthz_ms": summary(health) | {"max": round(max(health) * 1000, 1)},
        "seconds": round(elapsed, 1),
    }


def grow_corpus(stack: Stack, sentences: int) -> None:
    """Add `sentences` synthetic sentences per model key to the running stack's corpus."""
    subprocess.run(
        [str(stack.checkout / ".venv/bin/python"), "manage.py", "shell", "-c", GROW_SCRIPT],
        cwd=stack.checkout,
        env={**stack.env, "LOAD_GROW": str(sentences)},
        check=True,
    )


def rss_mb(processes: list[psutil.Process]) -> list[int]:
    return [round(process.memory_info().rss / 2**20) for process in processes]


def model_workers(stack: Stack) -> list[psutil.Process]:
    children = psutil.Process(stack.process.pid).children(recursive=True)
    return [p for p in children if "model_worker" in " ".join(p.cmdline())]


def run(args: argparse.Namespace) -> dict:
    import shutil
    import tempfile

    data_root = Path(tempfile.mkdtemp(prefix="artefact-load-"))
    stack = Stack(args.checkout.resolve(), data_root)
    stack.env |= {"ANALYSIS_UPLOADS_PER_HOUR": "100000", "API_THROTTLE_ANALYSES": "100000/hour"}
    extra_workers: list[subprocess.Popen] = []
    report: dict = {
        "cpu": cpu_name(),
        "checkout": str(args.checkout),
        "extra_sentences_per_model": args.sentences,
    }
    try:
        stack.wait_healthy()
        if args.sentences:
            grow_corpus(stack, args.sentences)
        # The readers are one researcher's open tabs: analyses are private to their owner.
        reader = accounts(stack, 1, "reader")[0]
        people = [
            Researcher(stack.port, reader["token"], reader["session"])
            for _ in range(max(args.users))
        ]
        analyses, _sentences, works = prepare(people[0])
        grids = {}
        for analysis in analyses:
            grid = json.loads(people[0].get(f"/api/v1/analyses/{analysis}")[1])["grid"]
            grids[analysis] = (grid["rows"], grid["cols"])
        reading = Reading(grids, works)

        report["reading"] = {}
        for users in args.users if "reading" in args.phases else ():
            tally, elapsed = read_for(people[:users], reading, seconds=args.seconds)
            report["reading"][f"{users}_users"] = tally.report(elapsed)
            print(f"{users} researchers reading: {tally.report(elapsed)}", file=sys.stderr)

        report["uploads"] = {}
        uploaders = [
            Researcher(stack.port, account["token"], account["session"])
            for account in accounts(stack, args.upload_users, "uploader")
        ]
        for workers in range(1, 2 + args.extra_workers) if "uploads" in args.phases else ():
            if workers > 1:
                extra_workers.append(
                    subprocess.Popen(
                        [str(stack.checkout / ".venv/bin/python"), "manage.py", "model_worker"],
                        cwd=stack.checkout,
                        env=stack.env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                time.sleep(args.worker_start_seconds)
            report["uploads"][f"{workers}_workers"] = upload_phase(uploaders, args.uploads)
            print(
                f"{workers} worker(s): {report['uploads'][f'{workers}_workers']}", file=sys.stderr
            )

        if "large" in args.phases:
            large = [
                Researcher(stack.port, account["token"], account["session"])
                for account in accounts(stack, args.large_uploads, "large")
            ]
            report["large_uploads"] = large_upload_phase(stack, large)
            print(f"large uploads: {report['large_uploads']}", file=sys.stderr)

        if "memory" not in args.phases:
            return report
        processes = {"web": stack.web_workers(), "model_worker": model_workers(stack)}
        before = {name: rss_mb(group) for name, group in processes.items()}
        tally, elapsed = read_for(
            people[: args.users[0]], reading, seconds=None, requests=args.rss_requests
        )
        after = {name: rss_mb(group) for name, group in processes.items()}
        report["memory"] = {
            "requests": args.rss_requests,
            "rss_mb_before": before,
            "rss_mb_after": after,
            "reading": tally.report(elapsed),
        }
        return report
    finally:
        for worker in extra_workers:
            worker.terminate()
            worker.wait(timeout=60)
        stack.stop()
        shutil.rmtree(data_root, ignore_errors=True)


def failures(report: dict) -> int:
    count = sum(
        n
        for phase in report["reading"].values()
        for status, n in phase["statuses"].items()
        if not 200 <= int(status) < 300
    )
    count += sum(
        n
        for phase in report["uploads"].values()
        for status, n in phase["statuses"].items()
        if int(status) != 202
    )
    count += sum(
        n
        for status, n in report.get("large_uploads", {}).get("statuses", {}).items()
        if int(status) != 202
    )
    if "memory" in report:
        count += report["memory"]["reading"]["requests"] - sum(
            n
            for status, n in report["memory"]["reading"]["statuses"].items()
            if 200 <= int(status) < 300
        )
    return count


def levels(text: str) -> list[int]:
    return [int(n) for n in text.split(",")]


def phases(text: str) -> tuple[str, ...]:
    chosen = tuple(text.split(","))
    unknown = set(chosen) - set(PHASES)
    if unknown:
        raise argparse.ArgumentTypeError(f"no phase {', '.join(sorted(unknown))}; {PHASES}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=REPO_ROOT)
    parser.add_argument("--users", type=levels, default=[10, 50])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--upload-users", type=int, default=5)
    parser.add_argument("--uploads", type=int, default=4, help="per uploading researcher")
    parser.add_argument("--extra-workers", type=int, default=1)
    parser.add_argument("--worker-start-seconds", type=float, default=20)
    parser.add_argument("--rss-requests", type=int, default=10_000)
    parser.add_argument("--large-uploads", type=int, default=8, help="researchers at once")
    parser.add_argument(
        "--sentences", type=int, default=0, help="synthetic sentences added per model key"
    )
    parser.add_argument(
        "--phases", type=phases, default=PHASES, help=f"comma-separated, of {','.join(PHASES)}"
    )
    parser.add_argument("--out", type=Path, help="also write the report (JSON) here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI's form: 10 researchers for 10 s, 3 uploading 2 each, one worker, 500 requests",
    )
    args = parser.parse_args()
    if args.quick:
        args.users, args.seconds, args.upload_users, args.uploads = [10], 10, 3, 2
        args.extra_workers, args.rss_requests, args.large_uploads = 0, 500, 2
    report = run(args)
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    failed = failures(report)
    if failed:
        raise SystemExit(f"{failed} requests failed under load.")


if __name__ == "__main__":
    main()
