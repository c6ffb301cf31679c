"""The page's facets, trend chart and sort control in Debian's chromium (Playwright), and its
accessibility: axe-core, injected from tests/api/node_modules (scripts/setup.sh installs it with
`npm ci`), must find no serious or critical violation at desktop and phone widths.

The server and page fixtures are test_browser.py's (a server of this module's own).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from corpus import Corpus
from test_browser import page, server, shot, wait_for_new_results  # noqa: F401 - fixtures used by name

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def serious_violations(page) -> list[dict]:  # noqa: ANN001
    """axe-core's serious and critical violations on the page as it is now (WCAG 2 A/AA and best practice)."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run scripts/setup.sh (npm ci in tests/api installs axe-core)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const result = await axe.run(document, { resultTypes: ['violations'] });
        return result.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 12) }));
    }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def search(page, expression: str) -> None:  # noqa: ANN001
    page.fill("#q", expression)
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('result')")


def test_page_passes_axe_at_desktop_and_phone_widths(page) -> None:  # noqa: ANN001
    assert serious_violations(page) == []          # the empty page, as a visitor first sees it
    search(page, "dog")
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.wait_for_timeout(200)  # let the layout settle before axe measures contrast
        assert serious_violations(page) == [], name
    page.set_viewport_size(DESKTOP)
    page.fill("#q", "dog+(park")
    page.press("#q", "Enter")
    page.wait_for_selector("#query-error:not([hidden])")
    assert serious_violations(page) == []          # the error state
    search(page, "park")
    page.locator("#grid .card").first.locator(".info").click()
    page.wait_for_selector("#detail[open]")
    page.wait_for_function("() => document.querySelectorAll('#detail-words .word').length > 0")
    assert serious_violations(page) == []          # the detail dialog
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail[open]", state="detached")
