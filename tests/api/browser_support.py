"""What the browser tests share: Debian's chromium and how it is started, where screenshots go,
and waiting on the page's result grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
