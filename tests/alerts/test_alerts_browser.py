"""The page in Debian's chromium (Playwright) against `jointspace serve` in a subprocess: "watch this
query" saves the current search, and a post indexed afterwards arrives live in the panel (SSE).
The server indexes in-process (no broker) with the histogram bundle, so the geometry is known."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.alerts.alert_support import corpus_with_prefix
from tests.api.browser_support import ARTIFACTS, chromium_page, serious_violations
from tests.api.served import serve
from tests.workers.histogram_bundle import FACTORY, IMPORT_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEY = "browser-alerts-key"


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
    """`jointspace serve` on the histogram bundle (no broker: it indexes in-process), holding 12 posts."""
    from tests.workers.corpus import TEST_MAX_BYTES, TEST_MAX_PIXELS

    home = media / "home"
    home.mkdir()
    extra = {
        "JOINTSPACE_MEDIA_ROOT": str(media),
        "JOINTSPACE_API_KEY": KEY,
        "JOINTSPACE_BUNDLE_FACTORY": FACTORY,
        "JOINTSPACE_IMAGE_MAX_PIXELS": str(TEST_MAX_PIXELS),
        "JOINTSPACE_IMAGE_MAX_BYTES": str(TEST_MAX_BYTES),
        "PYTHONPATH": IMPORT_ROOT,
    }
    # served.serve also fails the module when the server does not stop within 20 s of SIGTERM
    # (an event stream left open would hold it).
    with serve(home, extra) as url:
        old = corpus_with_prefix(media / "old", 12, "a")
        answer = httpx.post(f"{url}/posts", json=_posts(old), headers={"X-API-Key": KEY}, timeout=60)
        assert answer.status_code == 200, answer.text
        yield url


def test_the_page_watches_a_query_and_shows_a_new_match_live(
    server: str, media: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    new = corpus_with_prefix(media / "new", 6, "b")  # b00003 is the one red post
    with chromium_page(tmp_path_factory.mktemp("chromium-profile"), server) as page:
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
