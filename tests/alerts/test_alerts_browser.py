"""The page in Debian's chromium (Playwright) against `jointspace serve` in a subprocess: "watch this
query" saves the current search, and a post indexed afterwards arrives live in the panel (SSE).
The server indexes in-process (no broker) with the histogram bundle, so the geometry is known."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.alerts.alert_support import corpus_with_prefix
from tests.workers.histogram_bundle import FACTORY, IMPORT_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

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
TESTS = Path(__file__).resolve().parents[1]
KEY = "browser-alerts-key"


AXE = TESTS / "api" / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now (as test_browser_facets.py)."""
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _posts(corpus) -> list[dict]:
    rows = [json.loads(line) for line in corpus.jsonl.read_text().splitlines()]
    for row in rows:
        row["image"] = str(corpus.jsonl.parent / row["image"])
    return rows


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("alerts-media")


@pytest.fixture(scope="module")
def server(media: Path) -> Iterator[str]:
    from tests.workers.corpus import TEST_MAX_BYTES, TEST_MAX_PIXELS

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env.update(
        JOINTSPACE_HOME=str(media / "home"),
        JOINTSPACE_MEDIA_ROOT=str(media),
        JOINTSPACE_API_KEY=KEY,
        JOINTSPACE_BUNDLE_FACTORY=FACTORY,
        JOINTSPACE_IMAGE_MAX_PIXELS=str(TEST_MAX_PIXELS),
        JOINTSPACE_IMAGE_MAX_BYTES=str(TEST_MAX_BYTES),
        PYTHONPATH=IMPORT_ROOT,
    )
    log = media / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [shutil.which("jointspace") or "jointspace", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"jointspace serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jointspace serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        old = corpus_with_prefix(media / "old", 12, "a")
        answer = httpx.post(f"{url}/posts", json=_posts(old), headers={"X-API-Key": KEY}, timeout=60)
        assert answer.status_code == 200, answer.text
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("jointspace serve did not stop within 20 s of SIGTERM (open event streams?)")


def test_the_page_watches_a_query_and_shows_a_new_match_live(
    server: str, media: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    new = corpus_with_prefix(media / "new", 6, "b")  # b00003 is the one red post
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(60_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server)
        page.fill("#q", "red")
        page.press("#q", "Enter")
        page.wait_for_function("() => document.querySelector('#status').textContent.includes('result')")
        page.click("#watch-button")
        page.wait_for_selector("#watch-form:not([hidden])")
        assert 0.9 <= float(page.input_value("#watch-min-score")) <= 1.0  # suggested from the hits shown
        assert serious_violations(page) == []  # the watch form open
        page.fill("#watch-key", "wrong-key")
        page.click("#watch-form button[type=submit]")
        page.wait_for_function("() => document.querySelector('#watch-status').textContent.includes('API key')")
        page.fill("#watch-key", KEY)
        page.click("#watch-form button[type=submit]")
        page.wait_for_selector("#watch-list .watch-item")
        alert_id = page.get_attribute("#watch-list .watch-item", "data-alert")
        saved = httpx.get(f"{server}/alerts").json()["alerts"]
        assert [(a["id"], a["expression"], a["mode"]) for a in saved] == [(alert_id, "red", "semantic")]
        time.sleep(1.0)  # the page's event stream is open (its cursor fixed) before the post arrives

        answer = httpx.post(f"{server}/posts", json=_posts(new), headers={"X-API-Key": KEY}, timeout=60)
        assert answer.status_code == 200, answer.text
        page.wait_for_selector('#watch-list .watch-match[data-id="b00003"]', timeout=30_000)
        assert page.locator("#watch-list .watch-match").count() == 1  # only the red one matched
        assert "New match" in page.inner_text("#watch-status")
        page.wait_for_function(
            "() => { const i = document.querySelector('#watch-list .watch-match img');"
            " return i.complete && i.naturalWidth > 0 }"
        )
        page.screenshot(path=str(ARTIFACTS / "alerts-01-live-match.png"))
        assert serious_violations(page) == []  # the panel with a live match, at desktop width...
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(200)
        assert serious_violations(page) == []  # ...and at phone width
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(ARTIFACTS / "alerts-02-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})

        page.reload()  # the watched search is followed again after a reload
        page.wait_for_selector(f'#watch-list .watch-item[data-alert="{alert_id}"]')
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_event_stream_sends_each_new_match_once(server: str, media: Path) -> None:
    key = {"X-API-Key": KEY}
    alert = httpx.post(f"{server}/alerts", json={"q": "blue", "min_score": 0.9}, headers=key).json()
    more = corpus_with_prefix(media / "more", 12, "c")  # blue: c00001, c00007
    events: list[dict] = []
    with httpx.stream("GET", f"{server}/alerts/{alert['id']}/events", timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        posted = httpx.post(f"{server}/posts", json=_posts(more), headers=key, timeout=60)
        assert posted.status_code == 200
        event: dict[str, str] = {}
        for line in lines:
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(":")
                event[name] = value.strip()
            elif not line and event:
                events.append(event)
                event = {}
                if len(events) == 2:
                    break
    assert [e["event"] for e in events] == ["match", "match"]
    assert sorted(json.loads(e["data"])["id"] for e in events) == ["c00001", "c00007"]
    # Resuming after the first event's id sends only the second.
    with httpx.stream(
        "GET", f"{server}/alerts/{alert['id']}/events", timeout=30, headers={"Last-Event-ID": events[0]["id"]}
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                assert json.loads(line[5:])["id"] == json.loads(events[1]["data"])["id"]
                break
