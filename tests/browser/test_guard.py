"""The page fixture notices what it promises to: each kind of problem, provoked on purpose."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import PageGuard

pytestmark = pytest.mark.django_db(transaction=True)


def problems_after(page_guard: PageGuard, page: Page) -> list[str]:
    """What the guard collected, emptied again so that the test itself passes."""
    page.wait_for_timeout(100)
    seen = list(page_guard.problems)
    page_guard.problems.clear()
    return seen


def test_a_console_error_and_an_uncaught_exception_are_problems(page, page_guard):
    page.goto("/")
    page.evaluate(
        "() => { console.error('boom'); setTimeout(() => { throw new Error('kaboom'); }); }"
    )

    seen = problems_after(page_guard, page)

    assert any("console error: boom" in p for p in seen), seen
    assert any("uncaught exception" in p and "kaboom" in p for p in seen), seen


def test_an_inline_script_and_an_inline_style_are_refused_and_reported(page, page_guard):
    page.goto("/")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.inlineRan = true";
          document.body.append(script);
          document.body.setAttribute("style", "outline: 5px solid red");
        }"""
    )

    seen = problems_after(page_guard, page)

    assert page.evaluate("() => window.inlineRan") is None
    violations = [p for p in seen if p.startswith("CSP violation")]
    assert any("script-src-elem" in p for p in violations), seen
    assert any("style-src-attr" in p for p in violations), seen


def test_a_request_to_another_host_is_blocked_and_reported(page, page_guard):
    # about:blank has no CSP, so the request reaches the network layer that the guard watches.
    page.set_content('<img src="https://cdn.example.org/pixel.png" alt="">')

    seen = problems_after(page_guard, page)

    assert "request to another host (blocked): https://cdn.example.org/pixel.png" in seen


def test_an_error_status_is_a_problem_unless_the_test_expects_it(page, page_guard):
    page.goto("/static/no-such-file.js")
    seen = problems_after(page_guard, page)
    assert any(p.startswith("HTTP 404: GET") for p in seen), seen

    page_guard.expect_status(404, "/static/no-such-file.js")
    page.goto("/static/no-such-file.js")
    assert problems_after(page_guard, page) == []


def test_a_failed_request_is_a_problem(page, page_guard):
    page.goto("/")
    page.route("**/static/css/artefact.css?again", lambda route: route.abort())
    page.evaluate("() => fetch('/static/css/artefact.css?again').catch(() => {})")

    seen = problems_after(page_guard, page)

    assert any(p.startswith("request failed:") and "artefact.css?again" in p for p in seen), seen


def test_a_request_cut_short_by_leaving_the_page_is_no_problem(page, page_guard):
    left_behind = []
    page.on("requestfailed", lambda request: left_behind.append(request.url))
    page.route("**/static/css/artefact.css?slow", lambda route: None)  # never answered
    page.goto("/")
    page.evaluate("() => { fetch('/static/css/artefact.css?slow').catch(() => {}); }")
    page.wait_for_timeout(200)
    page.goto("/accounts/login/")

    assert problems_after(page_guard, page) == []
    assert any("artefact.css?slow" in url for url in left_behind), left_behind


def test_a_request_aborted_on_a_page_that_stays_is_still_a_problem(page, page_guard):
    page.route("**/static/css/artefact.css?stopped", lambda route: None)  # never answered
    page.goto("/")
    page.evaluate(
        """() => {
          const control = new AbortController();
          fetch('/static/css/artefact.css?stopped', {signal: control.signal}).catch(() => {});
          setTimeout(() => control.abort(), 100);
        }"""
    )
    page.wait_for_timeout(300)

    with pytest.raises(AssertionError, match=r"request failed: .*artefact\.css\?stopped"):
        page_guard.check()
    page_guard.problems.clear()


def test_the_guard_raises_with_every_problem_it_saw(page, page_guard):
    page_guard.problems.extend(["console error: one", "HTTP 500: GET /two"])

    with pytest.raises(AssertionError, match=r"(?s)console error: one.*HTTP 500: GET /two"):
        page_guard.check()
    page_guard.problems.clear()
