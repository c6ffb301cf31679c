"""Allowed media roots on both backends: folders of ingested pictures recorded with the index and
served; everything outside them still a 404 with a reason; POST /posts takes uploads or paths below
a root. (The page in Chromium after a real `jointspace ingest`: test_media_browser.py.)"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jointspace.api.app import create_app
from jointspace.api.container import ApiContainer, build_container
from jointspace.backends import open_backend
from jointspace.ingest.media_roots import RecordingSource
from jointspace.ingest.run import IngestRun
from jointspace.ingest.sources.jsonl import JsonlSource
from PIL import Image

from jointspace.media_roots import fixed_roots, too_broad
from jointspace.protocols import ModelBundle
from jointspace.settings import Settings
from tests.api.api_support import API_KEY, api_settings, write_jsonl
from tests.api.corpus import Corpus

BACKENDS = ["embedded", pytest.param("elasticsearch", marks=pytest.mark.es)]
HEADERS = {"X-API-Key": API_KEY}


@dataclass
class Rig:
    client: TestClient
    container: ApiContainer
    settings: Settings
    pictures: Path  # a folder outside the home and the configured media root
    outside: Path  # pictures that no post's ingest ever recorded
    recorded: list[str]


def _picture(path: Path, colour: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 40), colour).save(path)
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def rig(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, corpus: Corpus, bundle: ModelBundle
) -> Iterator[Rig]:
    es_url = request.getfixturevalue("es_url") if request.param == "elasticsearch" else None
    settings = api_settings(tmp_path_factory.mktemp("home"), corpus, es_url, alias="api-media-roots")
    pictures = tmp_path_factory.mktemp("my-pictures")
    outside = tmp_path_factory.mktemp("never-ingested")
    _picture(outside / "private.png", "black")
    rows = [
        {
            "id": f"mine-{i}",
            "image": str(_picture(pictures / "holiday" / f"p{i}.png", colour)),
            "caption": f"my {colour} picture",
            "city": "oslo",
        }
        for i, colour in enumerate(["red", "green", "blue"])
    ]
    rows.append(
        {
            "id": "mine-nested",
            "image": str(_picture(pictures / "holiday" / "day2" / "n.jpg", "orange")),
            "caption": "nested",
        }
    )
    posts_file = write_jsonl(tmp_path_factory.mktemp("jsonl") / "posts.jsonl", rows)
    container = build_container(settings, bundle)
    try:
        # What `jointspace ingest posts.jsonl` does: the JSONL source wrapped by the recorder.
        source = RecordingSource(JsonlSource(str(posts_file), settings), container.backend, fixed_roots(settings))
        summary = IngestRun(
            source,
            container.submitter,
            container.submitter.context.dead_letters,
            batch_size=8,
            backend=container.backend,
            progress=False,
        ).run()
        assert summary.indexed == len(rows) and not summary.dead, summary
        with TestClient(create_app(settings, container)) as client:
            yield Rig(client, container, settings, pictures, outside, source.recorded)
    finally:
        for post_id in [r["id"] for r in rows]:
            container.backend.delete(post_id)
        container.close()


def test_ingest_records_the_picture_folder_once(rig: Rig) -> None:
    holiday = str((rig.pictures / "holiday").resolve())
    assert rig.recorded == [holiday]  # the nested folder is covered by its parent
    assert rig.container.backend.media_roots() == [holiday]


def test_recorded_pictures_are_served(rig: Rig) -> None:
    for post_id in ("mine-0", "mine-nested"):
        image = rig.client.get(f"/posts/{post_id}/image")
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
        thumb = rig.client.get(f"/posts/{post_id}/thumbnail")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_roots_are_recorded_with_the_index(rig: Rig) -> None:
    """Another process opening the same index sees them (the CLI, a restarted server)."""
    other = open_backend(rig.settings, rig.container.bundle.name, rig.container.bundle.dim, read_only=True)
    try:
        assert other.media_roots() == rig.container.backend.media_roots()
        assert other.add_media_roots(rig.container.backend.media_roots()) == []  # idempotent
    finally:
        other.close()


def test_removing_a_root_stops_serving_with_the_reason(rig: Rig) -> None:
    holiday = rig.container.backend.media_roots()[0]
    assert rig.container.backend.remove_media_root(holiday)
    rig.container.media._recorded_at = float("-inf")  # the server re-reads within 2 s; do not wait here
    try:
        r = rig.client.get("/posts/mine-1/thumbnail")
        assert r.status_code == 404
        assert "outside the allowed media roots" in r.json()["message"]
        assert not r.headers.get("content-type", "").startswith("image/")
    finally:
        assert rig.container.backend.add_media_roots([holiday]) == [holiday]
        rig.container.media._recorded_at = float("-inf")
    assert rig.client.get("/posts/mine-1/thumbnail").status_code == 200


def test_outside_symlink_svg_and_traversal_stay_404(rig: Rig) -> None:
    holiday = rig.pictures / "holiday"
    link = holiday / "link.png"
    if not link.is_symlink():
        os.symlink(rig.outside / "private.png", link)
    svg = holiday / "drawing.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    refs = {
        "link": (str(link), "outside the allowed media roots"),
        "dotdot": (str(holiday / ".." / ".." / rig.outside.name / "private.png"), "outside the allowed"),
        "abs": (str(rig.outside / "private.png"), "outside the allowed"),
        "svg": (str(svg), "not a picture that is served"),
        "missing": (str(holiday / "gone.png"), "missing"),
    }
    from jointspace.records import Document, Post

    vector = rig.container.backend.get("mine-0").vector
    docs = [
        Document(post=Post(id=f"evil-{name}", image=ref, caption="x"), model=rig.container.bundle.name, vector=vector)
        for name, (ref, _) in refs.items()
    ]
    assert not rig.container.backend.upsert(docs).errors
    rig.container.backend.refresh()
    try:
        for name, (_, reason) in refs.items():
            for kind in ("image", "thumbnail"):
                r = rig.client.get(f"/posts/evil-{name}/{kind}")
                assert r.status_code == 404, (name, kind)
                assert reason in r.json()["message"], (name, r.json())
                assert not r.headers.get("content-type", "").startswith("image/")
    finally:
        for name in refs:
            rig.container.backend.delete(f"evil-{name}")


def test_post_takes_paths_below_a_recorded_root_and_nothing_else(rig: Rig) -> None:
    inside = _picture(rig.pictures / "holiday" / "later.png", "purple")
    body = [
        {"id": "by-path", "image": str(inside), "caption": "sent by path"},
        {"id": "not-allowed", "image": str(rig.outside / "private.png")},
    ]
    assert rig.client.post("/posts", json=body).status_code in (401, 403)  # no key: refused
    r = rig.client.post("/posts", json=body, headers=HEADERS)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == ["by-path"]
    assert "outside the allowed media roots" in r.json()["rejected"][0]["reason"]
    assert rig.client.get("/posts/by-path/thumbnail").status_code == 200
    assert rig.client.delete("/posts/by-path", headers=HEADERS).status_code == 200


def test_uploads_are_stored_by_content_under_the_home(rig: Rig) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (30, 30), "teal").save(buffer, "PNG")
    posts = json.dumps([{"id": "up-1", "image": "a.png"}, {"id": "up-2", "image": "a.png"}])
    r = rig.client.post(
        "/posts", headers=HEADERS, data={"posts": posts}, files=[("images", ("a.png", buffer.getvalue(), "image/png"))]
    )
    assert r.status_code == 200, r.text
    assert "up-1" in r.json()["accepted"]
    stored = list((rig.settings.home / "uploads").rglob("*.png"))
    assert len(stored) == 1 and stored[0].read_bytes() == buffer.getvalue()
    import hashlib

    assert stored[0].stem == hashlib.sha256(buffer.getvalue()).hexdigest()
    assert rig.client.get("/posts/up-1/image").content == buffer.getvalue()
    for post_id in ("up-1", "up-2"):
        rig.client.delete(f"/posts/{post_id}", headers=HEADERS)


def test_broad_folders_are_never_recorded() -> None:
    assert too_broad(Path("/tmp")) and too_broad(Path("/")) and too_broad(Path.home())
    assert too_broad(Path.home().parent)
    assert too_broad(Path("/tmp/pictures")) is None
