"""Browser tests: Playwright drives Debian's Chromium against pytest-django's live server.

Put page tests in this folder and ask for these fixtures:

``page``
    A fresh browser tab at 1440×900 whose relative URLs go to the live server
    (``page.goto("/accounts/login/")``). The test **fails** if, while it ran, the page logged a
    console error, threw an uncaught exception, had a request fail, got a response of 400 or
    more, violated the Content-Security-Policy, or asked for anything from another host (such
    requests are also blocked). Declare a status the test means to cause with
    ``page_guard.expect_status(404, "/some/path")``.
``page_guard``
    The :class:`PageGuard` of ``page``: ``expect_status``, ``expect_console`` and what it
    has seen so far.
``logged_in``
    A function: ``logged_in(user)`` signs ``page`` in as ``user`` (a session cookie, no form).
``screenshots``
    A function: ``screenshots("state")`` saves the whole page at 1440 and at 390 px wide as
    ``test-artifacts/<test>-<state>-<width>.png``, every image loaded (lazy ones too); a page
    wider than the window (one that scrolls sideways on a phone) fails the test like a
    console error. ``screenshots("state", full_page=False)`` saves the window only, for a
    state that lies over the page (a modal dialog stays in the window).
``browser``
    The one Chromium of the session. Without ``/usr/bin/chromium`` the tests that use it are
    skipped, or fail where ``CI=true``.

``assert_accessible(page)`` (``tests/browser/axe.py``) runs axe-core on the page and fails on
serious or critical violations. Every test that uses ``browser`` gets the ``browser`` marker:
``pytest -m browser`` runs only these, ``-m "not browser"`` everything else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Frame,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    sync_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Reports every CSP violation of every document the page opens to the test, including those
# Chromium would only log (a refused inline style attribute, say).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "an inline resource"}`
    + ` in ${event.documentURI} (${event.sourceFile || "?"}:${event.lineNumber})`
  );
}, true);
"""

# Loads every image of the page, lazy ones below the first screen too, so that a full-page
# screenshot shows them rather than blank boxes.
LOAD_IMAGES = """async () => {
  const images = [...document.images];
  for (const image of images) image.loading = "eager";
  await Promise.all(images.map((image) => image.decode().catch(() => null)));
}"""

GUARD = pytest.StashKey["PageGuard"]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test whose page had a problem, as a failure of the test and not of a teardown,
    and only once the test itself has passed (its own failure says more)."""
    result = yield
    guard = item.stash.get(GUARD, None)
    if guard is not None:
        guard.check()
    return result


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@dataclass
class PageGuard:
    """Collects what went wrong on a page: the test fails on any of it (see the module)."""

    origin: str
    page: Page | None = None
    problems: list[str] = field(default_factory=list)
    expected: list[tuple[int, str]] = field(default_factory=list)
    console_expected: list[tuple[str, str]] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    # How many documents each frame has shown, that count when each request began, and the
    # requests aborted so far: one the browser cut short because its frame went on to another
    # page is no fault of the page (a test that follows a link before the favicon has
    # arrived, say). Which it was is known once the next document has come, so `check` sorts
    # them out.
    loads: dict[Frame, int] = field(default_factory=dict)
    started: dict[Request, int] = field(default_factory=dict)
    aborted: list[tuple[Request, Frame | None, int]] = field(default_factory=list)
    # A download shows as a navigation the browser aborted: those URLs are no failure.
    downloads: set[str] = field(default_factory=set)

    def expect_status(self, status: int, path: str) -> None:
        """Allow responses of ``status`` for URLs whose path is ``path``: an error page the
        test opens on purpose. The browser's console line about it is allowed too."""
        self.expected.append((status, path))

    def expect_console(self, text: str, script: str) -> None:
        """Allow console errors that begin with ``text`` and come from a script whose path
        is ``script``: a vendored library's own warning that the project cannot change
        (say why where it is called). Errors of every other script still fail the test."""
        self.console_expected.append((text, script))

    def is_expected(self, status: int, url: str) -> bool:
        return (status, urlsplit(url).path) in self.expected

    def is_foreign(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in {"http", "https", "ws", "wss"} and (
            f"{parts.scheme}://{parts.netloc}" != self.origin
        )

    def attach(self, context: BrowserContext, page: Page) -> None:
        """Watch every page of ``context``: tabs and pop-ups the test opens count too."""
        self.page = page
        context.route(self.is_foreign, self._block)
        context.expose_function("reportCspViolation", self._on_csp_violation)
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        context.on("console", self._on_console)
        context.on("weberror", lambda web: self.problems.append(f"uncaught exception: {web.error}"))
        context.on("request", self._on_request)
        context.on("requestfinished", lambda request: self.started.pop(request, None))
        page.on("framenavigated", self._on_frame_navigated)
        context.on("page", lambda tab: tab.on("framenavigated", self._on_frame_navigated))
        page.on("download", lambda download: self.downloads.add(download.url))
        context.on("requestfailed", self._on_request_failed)
        context.on("response", self._on_response)

    def _block(self, route: Route) -> None:
        url = route.request.url
        self.blocked.add(url)
        self.problems.append(f"request to another host (blocked): {url}")
        route.abort("blockedbyclient")

    def _on_csp_violation(self, description: str) -> None:
        self.problems.append(f"CSP violation: {description}")

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = re.match(r"Failed to load resource: .* status of (\d+)", message.text)
        if status and self.is_expected(int(status.group(1)), message.location.get("url", "")):
            return
        where = message.location.get("url", "")
        if any(
            message.text.startswith(text) and urlsplit(where).path == script
            for text, script in self.console_expected
        ):
            return
        self.problems.append(f"console error: {message.text} ({where})")

    @staticmethod
    def _frame(request: Request) -> Frame | None:
        try:
            return request.frame
        except Exception:  # a service worker's request has no frame
            return None

    def _on_frame_navigated(self, frame: Frame) -> None:
        self.loads[frame] = self.loads.get(frame, 0) + 1

    def _on_request(self, request: Request) -> None:
        frame = self._frame(request)
        if frame is not None and not request.is_navigation_request():
            self.started[request] = self.loads.get(frame, 0)

    def _on_request_failed(self, request: Request) -> None:
        began = self.started.pop(request, None)
        if request.url in self.blocked:
            return
        if request.failure == "net::ERR_ABORTED" and request.is_navigation_request():
            self.aborted.append((request, self._frame(request), -1))
            return
        if request.failure == "net::ERR_ABORTED" and began is not None:
            self.aborted.append((request, self._frame(request), began))
        else:
            self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _on_response(self, response: Response) -> None:
        if response.status >= 400 and not self.is_expected(response.status, response.url):
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def check(self) -> None:
        """Raise if anything went wrong, after giving late events a moment to arrive."""
        if self.page is not None and not self.page.is_closed():
            self.page.wait_for_timeout(100)
        for request, frame, began in self.aborted:
            if began < 0:  # an aborted navigation: a failure unless it was a download
                if request.url not in self.downloads:
                    self.problems.append(f"request failed: {request.url} ({request.failure})")
            elif self.loads.get(frame, 0) <= began:
                self.problems.append(f"request failed: {request.url} ({request.failure})")
        self.aborted.clear()
        if self.problems:
            raise AssertionError(
                "The page had problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
            )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = (
            f"the browser tests need Chromium at {CHROMIUM}; `make install` installs it when "
            "run as root on Debian or Ubuntu, or run `apt-get install chromium`"
        )
        if on_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    # Playwright's sync API keeps an asyncio loop registered in this thread while it runs, so
    # Django would take every ORM call of the tests (and of pytest-django's database set-up
    # and flushes) for a call from async code and refuse it. None is: the tests are plain
    # synchronous code, and the live server answers in threads of its own.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright: Playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page_guard(browser: Browser, live_server, request) -> PageGuard:
    guard = PageGuard(origin=live_server.url)
    request.node.stash[GUARD] = guard
    return guard


@pytest.fixture
def page(browser: Browser, live_server, page_guard: PageGuard) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    # A page that works answers in well under a second here; fail fast when one does not.
    context.set_default_timeout(10_000)
    tab = context.new_page()
    page_guard.attach(context, tab)
    yield tab
    context.close()


@pytest.fixture
def logged_in(page: Page, live_server) -> Callable[[AbstractBaseUser], None]:
    """Sign ``page`` in as a user through a session made on the server side: quicker than
    the log-in form, which tests/browser/test_accounts.py covers."""

    def log_in(user: AbstractBaseUser) -> None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": cookie.key, "value": cookie.value, "url": live_server.url}]
        )

    return log_in


@pytest.fixture
def screenshots(page: Page, page_guard: PageGuard, request) -> Callable[..., list[Path]]:
    """``screenshots(state)`` saves the whole page at each width and returns the files
    (``full_page=False``: the window only).

    A page wider than the window (one that scrolls sideways on a phone) counts as a problem
    of the page, like a console error.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")

    def take(state: str, *, full_page: bool = True) -> list[Path]:
        ARTIFACTS.mkdir(exist_ok=True)
        files = []
        for viewport in (DESKTOP, PHONE):
            page.set_viewport_size(viewport)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            if width > viewport["width"]:
                page_guard.problems.append(
                    f"{page.url} is {width} px wide in a {viewport['width']} px window"
                )
            page.evaluate(LOAD_IMAGES)
            path = ARTIFACTS / f"{name}-{state}-{viewport['width']}.png"
            page.screenshot(path=path, full_page=full_page, animations="disabled")
            files.append(path)
        page.set_viewport_size(DESKTOP)
        return files

    return take
