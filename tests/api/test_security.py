"""Path traversal, auth for writes, body and query limits."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from jointspace.api.app import create_app
from PIL import Image

from jointspace.records import Document, Post
from tests.api.api_support import API_KEY, Api

SECRET = "TOP-SECRET-CONTENT"


@pytest.fixture(scope="module")
def outside_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real image outside the media root, whose bytes must never be served."""
    folder = tmp_path_factory.mktemp("outside")
    path = folder / "secret.png"
    Image.new("RGB", (8, 8), "black").save(path)
    (folder / "secret.txt").write_text(SECRET)
    return path


TRAVERSALS = [
    "/posts/../../../../etc/passwd",
    "/posts/..%2F..%2F..%2F..%2Fetc%2Fpasswd/image",
    "/posts/%2e%2e%2f%2e%2e%2fetc%2fpasswd/image",
    "/posts/%252e%252e%252f%252e%252e%252fetc%252fpasswd/image",
    "/posts/..%252f..%252fetc%252fpasswd/thumbnail",
    "/posts//etc/passwd/image",
    "/posts/%2Fetc%2Fpasswd/image",
    "/posts/file:%2F%2F%2Fetc%2Fpasswd/image",
    "/..%2F..%2F..%2Fetc%2Fpasswd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/static/../../../../etc/passwd",
    "/app.js/../../../../etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_attempts_get_no_file(api: Api, path: str) -> None:
    r = api.client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert b"root:" not in r.content and not r.headers.get("content-type", "").startswith("image/")


def test_post_whose_image_is_outside_the_media_root_is_not_served(api: Api, outside_file: Path) -> None:
    link = api.corpus.root / f"link-{api.backend_name}.png"
    if not link.is_symlink():
        os.symlink(outside_file, link)  # inside the root by name, outside by target
    vector = np.zeros(api.container.bundle.dim, np.float32)
    vector[0] = 1.0
    refs = {
        "abs": str(outside_file),
        "url": outside_file.as_uri(),
        "dotdot": str(api.corpus.root / ".." / outside_file.parent.name / outside_file.name),
        "symlink": str(link),
        "encoded": "file://" + str(outside_file).replace("/", "%2F"),
    }
    docs = [
        Document(Post(id=f"evil-{name}", image=ref, caption="evil"), vector, api.container.bundle.name)
        for name, ref in refs.items()
    ]
    assert not api.container.backend.upsert(docs).errors
    api.container.backend.refresh()
    thumbs = api.settings.home / "cache" / "thumbnails"
    made_before = sorted(thumbs.rglob("*.jpg")) if thumbs.exists() else []
    try:
        for name in refs:
            for kind in ("image", "thumbnail"):
                r = api.client.get(f"/posts/evil-{name}/{kind}")
                assert r.status_code == 404, (name, kind, r.status_code)
                assert r.content != outside_file.read_bytes()
        assert (sorted(thumbs.rglob("*.jpg")) if thumbs.exists() else []) == made_before  # no thumbnail of them
    finally:
        for name in refs:
            api.container.backend.delete(f"evil-{name}")
        api.container.backend.refresh()
        link.unlink()


def test_writes_need_the_key(api: Api) -> None:
    post = {"id": "nokey", "image": api.corpus.posts[0]["image"]}
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}):
        r = api.client.post("/posts", json=post, headers=headers)
        assert r.status_code == 401 and "X-API-Key" in r.json()["message"]
    r = api.client.delete(f"/posts/{api.corpus.posts[0]['id']}")
    assert r.status_code == 401
    assert api.client.get(f"/posts/{api.corpus.posts[0]['id']}").status_code == 200  # nothing was deleted
    assert api.client.get("/posts/nokey").status_code == 404


def client_with(api: Api, **changes: object) -> TestClient:
    """A second app over the same backend and model, with some settings changed."""
    settings = api.settings.model_copy(update=changes)
    return TestClient(create_app(settings, replace(api.container, settings=settings)))


def test_writes_refused_when_no_key_is_configured(api: Api) -> None:
    with client_with(api, api_key=None) as client:
        r = client.post("/posts", json={"image": "x.png"}, headers={"X-API-Key": API_KEY})
        assert r.status_code == 403 and "JOINTSPACE_API_KEY" in r.json()["message"]
        assert client.delete("/posts/anything").status_code == 403


def test_oversized_bodies_are_413(api: Api) -> None:
    limit = api.settings.api_max_request_bytes
    r = api.client.post(
        "/posts", content=b"[" + b" " * limit + b"]", headers={**api.write_headers, "content-type": "application/json"}
    )
    assert r.status_code == 413 and "JOINTSPACE_API_MAX_REQUEST_BYTES" in r.json()["message"]

    def chunks():  # no Content-Length: the cap must hold while the body streams
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = api.client.post("/posts", content=chunks(), headers={**api.write_headers, "content-type": "application/json"})
    assert r.status_code == 413


def test_oversized_image_upload_is_413(api: Api) -> None:
    big = (api.corpus.root / api.corpus.posts[0]["image"]).read_bytes()
    with client_with(api, image_max_bytes=len(big) - 1) as client:
        r = client.post("/search", files={"image": ("big.png", big, "image/png")})
        assert r.status_code == 413 and "JOINTSPACE_IMAGE_MAX_BYTES" in r.json()["message"]


def test_oversized_image_pixels_are_refused(api: Api) -> None:
    image = (api.corpus.root / api.corpus.posts[0]["image"]).read_bytes()
    with client_with(api, image_max_pixels=100) as client:
        r = client.post("/search", files={"image": ("wide.png", image, "image/png")})
        assert r.status_code == 400 and "JOINTSPACE_IMAGE_MAX_PIXELS" in r.json()["message"]
