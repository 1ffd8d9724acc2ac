"""Accessibility checks with axe-core, vendored in static/vendor/axe-core/.

axe is loaded from the live server's own static files rather than injected as an inline
script (``add_script_tag(path=...)`` would do that): the site's CSP refuses inline scripts, and
the page fixture fails a test on the violation that would cause.
"""

from __future__ import annotations

from django.conf import settings
from playwright.sync_api import Page

AXE_URL = f"{settings.STATIC_URL}vendor/axe-core/axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")
RUN_AXE = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
  }));
}"""


def axe_violations(page: Page) -> list[dict]:
    """Every axe-core violation on the page as it is now, at its current viewport."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE_URL)
    return page.evaluate(RUN_AXE)


def assert_accessible(page: Page) -> None:
    """Fail when axe-core finds a serious or critical violation, naming each with its nodes."""
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    if blocking:
        lines = [f"axe-core found serious or critical violations on {page.url}:"]
        for violation in blocking:
            lines.append(f"  [{violation['impact']}] {violation['id']}: {violation['help']}")
            lines.append(f"    {violation['helpUrl']}")
            for node in violation["nodes"][:5]:
                lines.append(f"    at {node['target']}: {node['summary']}")
        raise AssertionError("\n".join(lines))
