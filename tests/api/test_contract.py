"""The OpenAPI contract, fuzzed: schemathesis (`--checks all`) against `jointspace serve` (a real
process, embedded backend) over the indexed test corpus. Routes with a post id reach real posts:
the test gives indexed ids as the path parameters' examples (and the document links searches to
their posts). Zero failures. Bounded: 25 examples per operation and phase, about a minute here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jointspace.protocols import ModelBundle
from tests.api.api_support import API_KEY, serve_corpus
from tests.api.corpus import Corpus
from tests.api.fuzz_support import schema_with_examples, statuses_by_operation

pytestmark = pytest.mark.slow
SEED = 14
CONFIG = Path(__file__).with_name("schemathesis.toml")
POST_ROUTES = [
    "GET /posts/{post_id}",
    "GET /posts/{post_id}/image",
    "GET /posts/{post_id}/thumbnail",
    "GET /posts/{post_id}/describe",
    "DELETE /posts/{post_id}",
    "GET /cities/{city}/describe",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus, bundle: ModelBundle) -> Iterator[str]:
    with serve_corpus(tmp_path_factory.mktemp("contract-home"), corpus, bundle, API_KEY) as url:
        yield url


def schemathesis_command() -> list[str]:
    found = shutil.which("st") or shutil.which("schemathesis")
    return [found] if found else [sys.executable, "-m", "schemathesis.cli"]


def test_schemathesis_finds_no_failure(server: str, corpus: Corpus, tmp_path: Path) -> None:
    document = httpx.get(f"{server}/openapi.json", timeout=30).json()
    kept, doomed = corpus.posts[0]["id"], corpus.posts[1]["id"]
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(schema_with_examples(document, kept, doomed, corpus.posts[0]["city"])))
    report = tmp_path / "report"
    done = subprocess.run(
        [
            *schemathesis_command(),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            str(schema),
            "--url",
            server,
            "--checks",
            "all",
            "--header",
            f"X-API-Key: {API_KEY}",
            "--seed",
            str(SEED),
            "--max-examples",
            os.environ.get("JOINTSPACE_TEST_FUZZ_EXAMPLES", "25"),
            "--workers",
            "2",
            "--request-timeout",
            "60",
            "--report",
            "ndjson",
            "--report-dir",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    (tmp_path / "schemathesis.log").write_text(done.stdout + done.stderr)  # kept for a look after a failure
    assert done.returncode == 0, done.stdout[-15000:] + done.stderr[-3000:]
    # Something ran: "1647 generated, 1647 passed" (a bare substring test would read "30 passed"
    # as "0 passed").
    ran = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert ran and int(ran.group(2)) > 0, done.stdout[-3000:]
    statuses = statuses_by_operation(next(report.glob("*.ndjson")))
    for route in POST_ROUTES:  # the seeded posts were reached, not only 404s
        assert 200 in statuses.get(route, set()), (route, statuses.get(route))
    assert 200 in statuses["GET /search"], statuses["GET /search"]
    assert httpx.get(f"{server}/posts/{doomed}", timeout=30).status_code == 404  # DELETE really deleted


def test_load_right_after_the_fuzzer_on_the_same_server(server: str, tmp_path: Path) -> None:
    """bench/load.py (short: 4 clients, 10 s a phase) against the server the fuzzer just ran against:
    every request of the mix gets its expected status, also while POST /posts uploads in the
    background. The timing verdict is the benchmark's (docs/api.md), not asserted here."""
    out = tmp_path / "load"
    bench = Path(__file__).resolve().parents[2] / "bench" / "load.py"
    done = subprocess.run(
        [
            sys.executable,
            str(bench),
            "--url",
            server,
            "--api-key",
            API_KEY,
            "--clients",
            "4",
            "--seconds",
            "10",
            "--ingest-batch",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    [report] = json.loads((out / "load-embedded.json").read_text())
    assert report["unexpected"] == 0, report
    idle, ingest = report["phases"]
    assert idle["requests"] > 0 and ingest["requests"] > 0 and ingest["background"]["posts"] > 0
    assert ingest["background"]["statuses"].keys() == {"200"}
