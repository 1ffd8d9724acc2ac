"""First paint of the portal's pages in Chromium, against `make run`'s stack.

Starts the stack as `make run` does (see `bench/web_tier.py`: the demo world, gunicorn, one
model worker) on a fresh data folder, logs in as the demo user through the log-in form, then
loads each page `--loads` times in headless Chromium (Debian's, as the browser tests use) and
reads the browser's own Paint and Navigation Timing entries:

- cold: a new browser context per load (empty cache, the session cookie only), as a
  researcher's first visit of the day;
- warm: one context, reloaded (hashed static files come from the cache).

Reports the median and p95 of first contentful paint, DOMContentLoaded and load, and the bytes
transferred by a cold load. Only the stack's loopback address is contacted.

    python bench/portal_paint.py
    python bench/portal_paint.py --loads 30 --out /tmp/paint.json
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.common import finish_report  # noqa: E402
from bench.web_tier import Stack, percentile  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
TIMED = ("fcp", "dcl", "load")
PAGES = {"landing (visitor)": ("/", False), "workspace": ("/workspace/", True)}
TIMINGS = """() => {
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  return {
    fcp: paint ? paint.startTime : null,
    dcl: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd,
    bytes: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
  };
}"""


def log_in(browser: Browser, base: str) -> list[dict]:
    """The session cookies of the demo user, logged in through the form."""
    context = browser.new_context(base_url=base)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    page.wait_for_url(re.compile(r"/workspace/"))
    cookies = context.cookies()
    context.close()
    return cookies


def measure(page, path: str) -> dict:
    page.goto(path, wait_until="load")
    page.wait_for_function("() => performance.getEntriesByName('first-contentful-paint').length")
    return page.evaluate(TIMINGS)


def summary(values: list[float]) -> dict:
    return {"p50": round(statistics.median(values), 1), "p95": round(percentile(values, 0.95), 1)}


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="artefact-paint-") as data_root:
        stack = Stack(args.checkout, Path(data_root))
        try:
            print("Starting the stack (migrate, demo world, workers)…", file=sys.stderr)
            stack.wait_healthy()
            base = f"http://127.0.0.1:{stack.port}"
            results = {}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--headless", "--no-sandbox", "--disable-gpu"],
                )
                cookies = log_in(browser, base)
                for name, (path, needs_login) in PAGES.items():
                    cold, warm = [], []
                    for _ in tqdm(range(args.loads), desc=f"{name} cold", unit="load"):
                        context = browser.new_context(base_url=base)
                        if needs_login:
                            context.add_cookies(cookies)
                        cold.append(measure(context.new_page(), path))
                        context.close()
                    context = browser.new_context(base_url=base)
                    if needs_login:
                        context.add_cookies(cookies)
                    page = context.new_page()
                    measure(page, path)  # fills the cache
                    for _ in tqdm(range(args.loads), desc=f"{name} warm", unit="load"):
                        warm.append(measure(page, path))
                    context.close()
                    results[name] = {
                        "path": path,
                        "cold_ms": {key: summary([r[key] for r in cold]) for key in TIMED},
                        "warm_ms": {key: summary([r[key] for r in warm]) for key in TIMED},
                        "cold_kb": round(statistics.median(r["bytes"] for r in cold) / 1024, 1),
                    }
                browser.close()
        finally:
            stack.stop()
    return {
        "loads": args.loads,
        "command": "python bench/portal_paint.py " + " ".join(sys.argv[1:]),
        "pages": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=REPO_ROOT)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    finish_report(run(args), args.out)


if __name__ == "__main__":
    main()
