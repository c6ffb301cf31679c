"""Your own pictures show after your own ingest, with no media setting: a JSONL whose posts point
with absolute paths at pictures in folders outside the home is ingested with `jointspace ingest`,
then `jointspace serve` runs and Debian's chromium sees the pictures. A folder removed with
`jointspace media roots remove` shows placeholders that say why; traversal and unkeyed writes are
still refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from jointspace.protocols import ModelBundle
from tests.api.api_support import write_jsonl
from tests.api.browser_support import ARTIFACTS, chromium_page
from tests.api.corpus import Corpus
from tests.api.served import serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]
API_KEY = "media-browser-key"


@dataclass
class Served:
    url: str
    shown: set[str]  # post ids whose pictures lie in a recorded folder
    hidden: set[str]  # post ids whose folder was removed from the roots
    env: dict[str, str]


def jointspace(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = [shutil.which("jointspace") or sys.executable, *args]
    if not shutil.which("jointspace"):
        command = [sys.executable, "-c", "from jointspace.cli import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus, bundle: ModelBundle) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("media-home")
    # Pictures in two folders of their own, outside the home and outside any configured root.
    pictures = tmp_path_factory.mktemp("my-pictures")
    rows, shown, hidden = [], set(), set()
    for index, post in enumerate(corpus.posts[:10]):
        folder = pictures / ("summer" if index < 7 else "winter")
        folder.mkdir(exist_ok=True)
        target = folder / Path(post["image"]).name
        shutil.copyfile(corpus.root / post["image"], target)
        rows.append({**post, "id": f"own-{index}", "image": str(target)})  # absolute, as the README allows
        (shown if index < 7 else hidden).add(f"own-{index}")
    posts_file = write_jsonl(tmp_path_factory.mktemp("elsewhere") / "posts.jsonl", rows)

    extra = {"JOINTSPACE_MODEL": str(bundle.path), "JOINTSPACE_API_KEY": API_KEY}
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env.update(JOINTSPACE_HOME=str(home), OMP_NUM_THREADS="2", **extra)

    ingest = jointspace("ingest", str(posts_file), "--quiet", env=env)
    assert ingest.returncode == 0, ingest.stderr
    assert "media root recorded" in ingest.stderr
    listed = json.loads(jointspace("media", "roots", "--json", env=env).stdout)
    recorded = sorted(row["path"] for row in listed if row["kind"] == "recorded")
    assert recorded == sorted(str((pictures / name).resolve()) for name in ("summer", "winter"))
    removed = jointspace("media", "roots", "remove", str(pictures / "winter"), env=env)
    assert removed.returncode == 0, removed.stderr

    with serve(home, extra) as url:
        yield Served(url, shown, hidden, env)


def test_own_pictures_show_and_a_removed_folder_says_why(served: Served, tmp_path: Path) -> None:
    with chromium_page(tmp_path / "profile", served.url, viewport={"width": 1280, "height": 1400}) as page:
        page.fill("#q", "dog")
        page.press("#q", "Enter")
        page.wait_for_function(
            "() => document.querySelector('#status').textContent.includes('result')"
            " && document.querySelectorAll('#grid .card').length > 0"
        )
        ids = set(page.eval_on_selector_all("#grid .card", "els => els.map(e => e.dataset.id)"))
        # All ten posts match (k is 24), bar near-duplicates the search collapses.
        shown, hidden = sorted(ids & served.shown), sorted(ids & served.hidden)
        assert len(shown) >= 5 and len(hidden) >= 2, ids
        # Every picture of a recorded folder loads; every one of the removed folder becomes a
        # placeholder naming the reason.
        page.wait_for_function(
            "ids => ids.every(id => { const img = document.querySelector(`#grid .card[data-id='${id}'] img.thumb`);"
            " return img && img.complete && img.naturalWidth > 0 })",
            arg=shown,
        )
        page.wait_for_function(
            "ids => ids.every(id => document.querySelector(`#grid .card[data-id='${id}'] .thumb.unavailable`))",
            arg=hidden,
        )
        reasons = page.eval_on_selector_all("#grid .thumb.unavailable .why", "els => els.map(e => e.textContent)")
        assert len(reasons) == len(hidden)
        assert all("outside the allowed media roots" in r for r in reasons), reasons
        page.screenshot(path=str(ARTIFACTS / "08-own-pictures.png"))
        # The detail view says it too, and shows a served picture again afterwards.
        page.locator(f"#grid .card[data-id='{hidden[0]}'] .info").click()
        page.wait_for_selector("#detail[open] .unavailable .why")
        assert "outside the allowed media roots" in page.inner_text("#detail .unavailable .why")
        page.keyboard.press("Escape")
        page.locator(f"#grid .card[data-id='{shown[0]}'] .info").click()
        page.wait_for_function(
            "() => { const i = document.querySelector('#detail-image');"
            " return !i.hidden && i.complete && i.naturalWidth > 0"
            " && !document.querySelector('#detail .unavailable') }"
        )
        page.keyboard.press("Escape")


def test_traversal_and_unkeyed_writes_are_still_refused(served: Served) -> None:
    for path in (
        "/posts/..%2F..%2F..%2Fetc%2Fpasswd/image",
        "/posts/%2e%2e%2f%2e%2e%2fetc%2fpasswd/thumbnail",
        "/..%2F..%2Fetc%2Fpasswd",
    ):
        r = httpx.get(served.url + path)
        assert r.status_code in (400, 404) and b"root:" not in r.content, path
    post = [{"id": "sneaky", "image": "/etc/hostname", "caption": "x"}]
    assert httpx.post(f"{served.url}/posts", json=post).status_code == 401
    assert httpx.post(f"{served.url}/posts", json=post, headers={"X-API-Key": "wrong"}).status_code == 401
    keyed = httpx.post(f"{served.url}/posts", json=post, headers={"X-API-Key": API_KEY}, timeout=60)
    assert keyed.status_code == 400 and "outside the allowed media roots" in keyed.json()["rejected"][0]["reason"]
    hidden = sorted(served.hidden)[0]
    r = httpx.get(f"{served.url}/posts/{hidden}/image")
    assert r.status_code == 404 and not r.headers["content-type"].startswith("image/")
