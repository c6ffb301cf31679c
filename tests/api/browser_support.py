"""What the browser tests share: Debian's chromium and how it is started, where screenshots go,
waiting on the page's result grid, and axe-core's accessibility check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"  # scripts/setup.sh: npm ci
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@contextmanager
def chromium_page(profile: Path, url: str, viewport: dict[str, int] = DESKTOP) -> Iterator[Any]:
    """Debian's chromium, headless with a fresh profile, on `url`: yields the page (playwright's
    Page, 60 s default timeout). Fails the test when chromium is missing, and when the page raised
    a JavaScript error while the body ran."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=viewport
        )
        try:
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            yield page
        finally:
            context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def serious_violations(page: Any) -> list[dict[str, Any]]:
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


def card_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#grid .card", "els => els.map(e => e.dataset.id)")


def wait_for_new_results(page: Any, old: list[str]) -> list[str]:
    page.wait_for_function(
        "old => { const ids = [...document.querySelectorAll('#grid .card')].map(e => e.dataset.id);"
        " return ids.length > 0 && ids.join() !== old"
        " && document.querySelector('#status').textContent.includes('result') }",
        arg=",".join(old),
    )
    return card_ids(page)


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
