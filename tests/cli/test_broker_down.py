"""Redis (the broker) down: every door answers one clear error naming its URL and what to do,
never a traceback. The CLI exits 2, as for Elasticsearch down; the worker exits non-zero (so a
supervisor restarts it); `status` hints how to start it; the API answers 503 `broker_unavailable`;
an ingest run whose Redis dies midway prints what it had done and stops in one line. Real Redis:
a port nothing listens on, or the session's redis-server stopped under a running ingest."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from jointspace.settings import Settings
from tests.workers.conftest import base_env
from tests.workers.corpus import make_corpus
from tests.workers.histogram_bundle import FACTORY

KEY = "broker-down-key"
HINT = "jointspace redis start"


@pytest.fixture
def down_url() -> str:
    """A Redis URL on a local port that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def _run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["jointspace", *args], capture_output=True, text=True, env=env, timeout=timeout)


def _assert_one_clear_line(done: subprocess.CompletedProcess[str], url: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, done.stderr
    assert f"the broker (Redis) at {url} cannot be reached" in error_lines[0] and HINT in error_lines[0]
    assert "JOINTSPACE_BROKER_URL" in error_lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["ingest", "POSTS"],
        ["alerts", "list"],
        ["alerts", "add", "red", "--min-score", "0.5"],
        ["alerts", "matches", "nosuch"],
        ["alerts", "remove", "nosuch"],
        ["dead-letters", "list"],
        ["dead-letters", "retry"],
        ["dead-letters", "purge", "--yes"],
        ["worker", "--pool", "solo"],
    ],
)
def test_cli_with_the_broker_down_exits_2_with_one_line_naming_it(
    tmp_path: Path, down_url: str, args: list[str]
) -> None:
    corpus = make_corpus(tmp_path, n_good=3)
    args = [str(corpus.jsonl) if a == "POSTS" else a for a in args]
    env = base_env(tmp_path / "home", JOINTSPACE_BROKER_URL=down_url)
    done = _run(env, *args)
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    _assert_one_clear_line(done, down_url)
    if args[0] == "ingest":  # refused before anything is read: no progress, no summary
        assert "read " not in done.stderr
    as_json = _run(env, *args, "--json") if args[0] != "worker" else None
    if as_json is not None:
        assert as_json.returncode == 2
        body = json.loads(as_json.stdout)
        assert body["error"] == "broker_unavailable" and down_url in body["message"], body


def test_status_says_how_to_start_the_broker(tmp_path: Path, down_url: str) -> None:
    env = base_env(tmp_path / "home", JOINTSPACE_BROKER_URL=down_url)
    done = _run(env, "status")
    assert done.returncode == 1
    line = next(line for line in done.stdout.splitlines() if line.startswith("broker"))
    assert "PROBLEM: the broker (Redis) at" in line and down_url in line and HINT in line, line


def test_the_password_in_a_broker_url_is_never_shown(tmp_path: Path, down_url: str) -> None:
    secret_url = down_url.replace("redis://", "redis://:s3cret@")
    done = _run(base_env(tmp_path / "home", JOINTSPACE_BROKER_URL=secret_url), "dead-letters", "list")
    assert done.returncode == 2 and "s3cret" not in done.stderr and ":***@127.0.0.1" in done.stderr, done.stderr


def test_ingest_whose_broker_dies_midway_prints_what_it_did_and_stops_in_one_line(
    tmp_path: Path, redis_server, redis_url: str
) -> None:
    """No worker runs, so the producer holds back at the first queued batch (queue bound 1); then
    Redis stops under it."""
    corpus = make_corpus(tmp_path, n_good=6)
    env = base_env(
        tmp_path / "home", JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_BATCH_SIZE="1", JOINTSPACE_QUEUE_MAX_BATCHES="1"
    )
    queue = env["JOINTSPACE_CELERY_QUEUE"]
    proc = subprocess.Popen(
        ["jointspace", "ingest", str(corpus.jsonl), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        client = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + 60
        while client.llen(queue) < 1:
            assert proc.poll() is None and time.monotonic() < deadline, "the producer never queued a batch"
            time.sleep(0.1)
        client.close()
        time.sleep(0.5)  # held back at the second batch
        redis_server.stop()
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)
    assert done.returncode == 2, stderr[-3000:]
    _assert_one_clear_line(done, redis_url)
    assert "run the same `jointspace ingest` again: posts already indexed are skipped" in stderr
    assert "read 2 posts" in stderr and "0 indexed" in stderr, stderr  # the summary so far


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def api_client(tmp_path: Path, down_url: str) -> Iterator[TestClient]:
    from jointspace.api.app import create_app
    from jointspace.api.container import build_container

    os.environ.pop("JOINTSPACE_ALERTS_KEY_PREFIX", None)
    settings = Settings(
        home=tmp_path / "home",
        media_root=tmp_path,
        api_key=KEY,
        es_url=None,
        broker_url=down_url,
        bundle_factory=FACTORY,
    )
    container = build_container(settings)  # starts with Redis down: /health says so, requests answer 503
    try:
        with TestClient(create_app(settings, container), raise_server_exceptions=False) as client:
            yield client
    finally:
        container.close()


def test_api_answers_503_broker_unavailable_when_redis_is_down(api_client: TestClient, down_url: str) -> None:
    key = {"X-API-Key": KEY}
    answers = {
        "POST /posts": api_client.post(
            "/posts",
            headers=key,
            files=[("images", ("p.png", _png(1), "image/png"))],
            data={"posts": json.dumps([{"id": "p", "caption": "a post"}])},
        ),
        "GET /alerts": api_client.get("/alerts"),
        "POST /alerts": api_client.post("/alerts", json={"q": "red", "min_score": 0.5}, headers=key),
        "GET /alerts/x/matches": api_client.get("/alerts/x/matches"),
        "DELETE /alerts/x": api_client.delete("/alerts/x", headers=key),
    }
    for route, answer in answers.items():
        assert answer.status_code == 503, (route, answer.status_code, answer.text)
        body = answer.json()
        assert body["error"] == "broker_unavailable", (route, body)
        assert down_url in body["message"] and HINT in body["message"], (route, body)
        assert set(body) >= {"error", "message", "position", "suggestions"}
