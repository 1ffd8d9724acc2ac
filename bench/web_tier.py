"""Web tier: resident memory of `make run`'s gunicorn workers under mixed traffic, and the
latency of a text search (embedded by the model worker, then cached).

Starts the stack exactly as `make run` does (`python -m artefact_site.stack`, the demo world,
two web workers with four threads each, one model worker) from a checkout, on a fresh data
folder, then sends `--requests` requests from `--clients` threads over loopback: text
searches (new texts, and texts asked before), analysis pages, cell clicks, heat-map PNGs,
work and sentence pages. Reports the RSS of each web worker after the run and the p50/p95 of
first-time and repeated text searches.

    python bench/web_tier.py                       # this checkout
    python bench/web_tier.py --checkout /tmp/old   # another one, e.g. a worktree of an older
                                                   # commit, to measure a baseline beside it

Only loopback addresses are contacted; the run is bounded by `--requests`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from apps.demo.scenes import make_scene  # noqa: E402

WORDS = [
    "red",
    "blue",
    "green",
    "boat",
    "house",
    "tree",
    "horse",
    "dog",
    "bird",
    "tower",
    "ship",
    "sun",
    "moon",
    "hill",
    "river",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    def __init__(self, checkout: Path, data_root: Path) -> None:
        self.checkout = checkout
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
            "DATA_ROOT": str(data_root),
            "PORT": str(self.port),
            "DJANGO_SETTINGS_MODULE": "artefact_site.settings",
            "WEB_CONCURRENCY": "2",
            "LOAD_DEMO": "true",
            "API_THROTTLE_USER": "1000000/hour",
        }
        self.process = subprocess.Popen(
            [str(checkout / ".venv/bin/python"), "-m", "artefact_site.stack"],
            cwd=checkout,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_healthy(self, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("The stack exited while starting.")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5):
                    return
            except (OSError, urllib.error.HTTPError):
                time.sleep(1)
        raise SystemExit("The stack did not become healthy in time.")

    def token(self) -> str:
        result = subprocess.run(
            [str(self.checkout / ".venv/bin/python"), "manage.py", "create_api_token", "demo"],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.split()[-1]

    def web_workers(self) -> list[psutil.Process]:
        children = psutil.Process(self.process.pid).children(recursive=True)
        masters = {p.pid for p in children if p.ppid() == self.process.pid}
        return [p for p in children if p.ppid() in masters and "gunicorn" in " ".join(p.cmdline())]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Token {token}"}

    def get(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def send(self, method: str, path: str, body: bytes, content_type: str) -> dict:
        headers = {**self.headers, "Content-Type": content_type}
        request = urllib.request.Request(self.base + path, body, headers, method=method)
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def upload(self, image: bytes) -> str:
        boundary = "bench-boundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                f'filename="scene.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            + image
            + f"\r\n--{boundary}--\r\n".encode()
        )
        analysis = self.send(
            "POST", "/api/v1/analyses", body, f"multipart/form-data; boundary={boundary}"
        )
        return analysis["id"]

    def wait_for(self, path: str, ready, timeout: float = 300) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.get(path)
            if ready(status, body):
                return body
            time.sleep(0.3)
        raise SystemExit(f"Timed out waiting for {path}.")


def scene_png(seed: int) -> bytes:
    image, _ = make_scene(seed)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def prepare(client: Client) -> tuple[list[str], list[str], list[str]]:
    """Three finished analyses, a heat map on each, and their sentence and work ids."""
    analyses, sentences, works = [], [], []
    for seed in (1, 2, 3):
        analysis_id = client.upload(scene_png(seed))
        body = json.loads(
            client.wait_for(
                f"/api/v1/analyses/{analysis_id}",
                lambda status, body: json.loads(body)["status"] in ("done", "failed"),
            )
        )
        results = body["results"]
        analyses.append(analysis_id)
        sentences += [hit["sentence_id"] for hit in results[:5]]
        works += [hit["work"]["id"] for hit in results[:5]]
        client.send(
            "POST",
            f"/api/v1/analyses/{analysis_id}/heatmaps",
            json.dumps({"sentence_ids": [results[0]["sentence_id"]]}).encode(),
            "application/json",
        )
        client.wait_for(
            f"/api/v1/analyses/{analysis_id}/heatmaps/{results[0]['sentence_id']}.json",
            lambda status, body: status == 200,
        )
    return analyses, sentences, works


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(args: argparse.Namespace) -> dict:
    data_root = Path(tempfile.mkdtemp(prefix="artefact-web-bench-"))
    stack = Stack(args.checkout.resolve(), data_root)
    try:
        started = time.monotonic()
        stack.wait_healthy()
        startup = time.monotonic() - started
        client = Client(stack.port, stack.token())
        analyses, sentences, works = prepare(client)
        rng = random.Random(0)
        asked: list[str] = []
        timings: dict[str, list[float]] = {"search_new": [], "search_repeat": []}
        lock = threading.Lock()

        def one(i: int) -> int:
            kind = rng.choice(
                ["search"] * 3 + ["analysis", "cell", "cell", "heatmap", "work", "sentence"]
            )
            analysis = rng.choice(analyses)
            if kind == "search":
                with lock:
                    repeat = bool(asked) and rng.random() < 0.5
                    text = rng.choice(asked) if repeat else " ".join(rng.sample(WORDS, 4)) + f" {i}"
                    asked.append(text)
                query = urllib.parse.quote(text)
                begun = time.perf_counter()
                status, _ = client.get(f"/api/v1/search?q={query}&model=paintingclip&k=10")
                elapsed = time.perf_counter() - begun
                with lock:
                    timings["search_repeat" if repeat else "search_new"].append(elapsed)
                return status
            if kind == "analysis":
                return client.get(f"/api/v1/analyses/{analysis}")[0]
            if kind == "cell":
                row, col = rng.randrange(7), rng.randrange(7)
                return client.get(f"/api/v1/analyses/{analysis}/cells/{row}/{col}?k=10")[0]
            if kind == "heatmap":
                index = analyses.index(analysis) * 5
                path = f"/api/v1/analyses/{analysis}/heatmaps/{sentences[index]}.png"
                return client.get(path)[0]
            if kind == "work":
                return client.get(f"/api/v1/works/{rng.choice(works)}")[0]
            return client.get(f"/api/v1/sentences/{rng.choice(sentences)}")[0]

        statuses: dict[int, int] = {}
        with ThreadPoolExecutor(args.clients) as pool:
            progress = tqdm(pool.map(one, range(args.requests)), total=args.requests, unit="req")
            for status in progress:
                statuses[status] = statuses.get(status, 0) + 1
        rss = sorted(round(p.memory_info().rss / 2**20) for p in stack.web_workers())
        return {
            "checkout": str(args.checkout),
            "requests": args.requests,
            "clients": args.clients,
            "statuses": statuses,
            "startup_seconds": round(startup, 1),
            "web_worker_rss_mb": rss,
            "search_new_ms": summary(timings["search_new"]),
            "search_repeat_ms": summary(timings["search_repeat"]),
            "cpu": cpu_name(),
        }
    finally:
        stack.stop()
        shutil.rmtree(data_root, ignore_errors=True)


def summary(values: list[float]) -> dict:
    if not values:
        return {}
    return {
        "n": len(values),
        "p50": round(statistics.median(values) * 1000, 1),
        "p95": round(percentile(values, 0.95) * 1000, 1),
    }


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=REPO_ROOT)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
