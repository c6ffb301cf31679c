"""POST /posts with a broker: the API answers 202 once the posts are queued, and real worker
processes index them (or dead-letter them with the reason); nothing accepted is lost."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from .conftest import Rig, wait_until

pytestmark = pytest.mark.slow
API_KEY = "queue-test-key-0123456789"


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_post_posts_queues_to_workers_which_index_or_dead_letter(tmp_path, rig_factory, redis_url, es_url):
    from jointspace.api.app import create_app
    from jointspace.api.container import build_container
    from jointspace.backends import open_backend
    from jointspace.workers.dead_letters import open_dead_letters

    from tests.workers.histogram_bundle import make_bundle

    media = tmp_path / "media"
    media.mkdir()
    truncated = _png(99)[:60]  # a valid PNG header, then nothing: the API's checks pass, decoding fails
    (media / "cut.png").write_bytes(truncated)
    rig: Rig = rig_factory(
        JOINTSPACE_BROKER_URL=redis_url,
        JOINTSPACE_ES_URL=es_url,
        JOINTSPACE_MEDIA_ROOT=str(media),
        JOINTSPACE_API_KEY=API_KEY,
    )
    worker = rig.worker()
    settings = rig.settings()
    bundle = make_bundle()
    container = build_container(settings, bundle)
    assert not container.in_process
    try:
        with TestClient(create_app(settings, container)) as client:
            posts = [{"id": f"q{i}", "caption": f"queued {i} #queue", "city": "Oslo"} for i in range(6)]
            files = [("images", (f"q{i}.png", _png(i), "image/png")) for i in range(6)]
            answer = client.post(
                "/posts", headers={"X-API-Key": API_KEY}, files=files, data={"posts": json.dumps(posts)}
            )
            assert answer.status_code == 202, answer.text
            body = answer.json()
            assert body["queued"] is True and sorted(body["accepted"]) == [f"q{i}" for i in range(6)]

            answer = client.post(
                "/posts",
                headers={"X-API-Key": API_KEY},
                json=[{"id": "cut", "image": "cut.png", "caption": "a cut file"}],
            )
            assert answer.status_code == 202 and answer.json()["accepted"] == ["cut"], answer.text

        backend = open_backend(settings, bundle.name, bundle.dim)
        store = open_dead_letters(settings)
        try:

            def settled() -> bool:
                backend.refresh()
                return backend.count() == 6 and any(letter.key == "cut" for letter in store.list())

            wait_until(settled, 120, "the workers to index the queued posts\n" + worker.tail())
            assert {d.post.id for d in backend.iter_documents()} == {f"q{i}" for i in range(6)}
            assert all(backend.get(f"q{i}").post.city == "oslo" for i in range(6))
            letter = next(letter for letter in store.list() if letter.key == "cut")
            assert letter.stage == "decode" and letter.reason and letter.post["id"] == "cut"
        finally:
            store.close()
            backend.close()
    finally:
        container.close()
