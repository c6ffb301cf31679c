"""End-to-end `GET /search` latency on N posts in Elasticsearch with real-distribution vectors, against
the engine's own time measured in the same run.

    python bench/search_latency.py --n 100000          # a local node started here (not timed)
    JOINTSPACE_ES_URL=http://... python bench/search_latency.py --n 100000

The posts are `bench/scale.py`'s (real vectors from `bench/real_vectors.py`'s cache: the sentence
model's embeddings of distinct texts; a city, a source and a hashtag each) under the default
bundle's name, so a real `jointspace serve` (defaults; the user's text cache, so the nearest-word
vocabulary is not embedded again) searches them with its real text encoder.
Queries: 100 held-out words of the corpus (never indexed texts), k = 20, semantic and hybrid.

For each query, in the same run: `GET /search` wall time from this process (HTTP, parsing, encoding
the words, the kNN/BM25 requests, fusion, the explanation, JSON), the service's own timings
(`explain.timings_ms`: total and the part inside backend calls), and the bare backend call
(`backend.knn` with the query's precomputed vector, and for hybrid `backend.keyword` too, from
Python): the engine's time. Prints p50/p99
of each and the ratio of the end-to-end p50 to the bare engine's p50; writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_vectors import corpus, real_vectors
from scale import elasticsearch_node, index_all


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[float, dict]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as answer:
        body = json.loads(answer.read())
    return (time.perf_counter() - started) * 1000.0, body


def wait_until_ready(url: str, server: subprocess.Popen, deadline: float) -> float:
    """Seconds until `GET /health` says ready (the nearest-word vocabulary prepared)."""
    started = time.monotonic()
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("serve did not get ready (GET /health never said ready)")
        try:
            _, health = get(url + "/health")
        except urllib.error.HTTPError as degraded:  # 503 still says whether the vocabulary is ready
            health = json.loads(degraded.read())
        except OSError:
            health = {"ready": False}
        if health.get("ready", True):  # no `ready` field: nothing is prepared in the background
            return time.monotonic() - started
        if not health.get("nearest_words", {}).get("ok", True):  # failed: it will never be ready
            raise RuntimeError(f"serve's nearest words failed: {health['nearest_words'].get('detail')}")
        time.sleep(0.5)


def p(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) if samples else float("nan")


def held_out_words(count: int, queries: int) -> list[str]:
    """Single alphabetic words among the corpus's held-out tail (never indexed)."""
    tail = corpus()[-(queries + 20_000) :]
    words = [t.lower() for t in tail if t.isalpha() and t.isascii() and 3 <= len(t) <= 12]
    return list(dict.fromkeys(words))[:count]


def settle(
    client: Any, index: str, quiet_polls: int = 3, poll_s: float = 2.0, limit_s: float = 900.0
) -> tuple[float, int]:
    """Waits until no merge has run on `index` for `quiet_polls` polls in a row; returns the seconds
    waited and the segment count then."""
    started = time.monotonic()
    quiet = 0
    while quiet < quiet_polls and time.monotonic() - started < limit_s:
        time.sleep(poll_s)
        merges = client.indices.stats(index=index, metric="merge")["_all"]["primaries"]["merges"]["current"]
        quiet = quiet + 1 if merges == 0 else 0
    # A shard that no search reached for 30 s skips its scheduled refreshes (search-idle), and the
    # count comes from its last reader: 45 segments before this refresh, 18 after it (100k posts,
    # the kNN time unchanged: a search refreshes such a shard first).
    client.indices.refresh(index=index)
    segments = client.indices.stats(index=index, metric="segments")["_all"]["primaries"]["segments"]["count"]
    return time.monotonic() - started, int(segments)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("-k", type=int, default=20)
    ap.add_argument("--es-heap", default="2g")
    ap.add_argument("--out", type=Path, default=Path("bench/out/search_latency"))
    args = ap.parse_args()

    from jointspace.backends import open_backend
    from jointspace.backends.elasticsearch import ElasticsearchBackend
    from jointspace.encoders.bundle import load_bundle

    from jointspace.settings import Settings

    vectors, _, facts = real_vectors(args.n, 100)
    words = held_out_words(args.queries, 100)
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-latency-"))
    home = tmp / "home"
    rows: dict[str, dict[str, float]] = {}
    try:
        with elasticsearch_node(tmp, args.es_heap) as url:
            settings = Settings(home=home, es_url=url)
            bundle = load_bundle(None, settings)  # the manifest only: name and dimension
            backend = open_backend(settings, bundle.name, bundle.dim)
            print(f"indexing {args.n:,} posts", file=sys.stderr)
            load_s, _ = index_all(backend, vectors, bundle.name, 2000, threads=2)  # two bulk requests: the node's cores
            # Right after a bulk load the node merges segments for minutes; measured then, the
            # first mode pays for them and the second does not.
            assert isinstance(backend, ElasticsearchBackend)
            facts["settle_s"], facts["segments"] = settle(backend.client, backend.alias)
            print(f"merges settled after {facts['settle_s']:.0f} s: {facts['segments']} segments", file=sys.stderr)
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
            env |= {"JOINTSPACE_HOME": str(home), "JOINTSPACE_ES_URL": url}
            log = (tmp / "serve.log").open("w")
            server = subprocess.Popen(
                [shutil.which("jointspace") or "jointspace", "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                deadline = time.monotonic() + 600
                while True:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"serve did not start: {(tmp / 'serve.log').read_text()[-3000:]}")
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=1):
                            break
                    except OSError:
                        time.sleep(0.2)
                # Timed only once serve is ready: on a home without a cached vocabulary it embeds
                # the nearest-word vocabulary in the background (23 s on an idle 2-core host), and
                # every figure taken meanwhile shares the cores with it.
                try:
                    facts["serve_ready_s"] = wait_until_ready(f"http://127.0.0.1:{port}", server, deadline)
                except RuntimeError as exc:
                    raise RuntimeError(f"{exc}\n{(tmp / 'serve.log').read_text()[-3000:]}") from None
                print(f"serve ready after {facts['serve_ready_s']:.0f} s", file=sys.stderr)
                base = f"http://127.0.0.1:{port}/search?k={args.k}&q="
                # Encoded before the loop: an encode here, just before each bare call, left this
                # process's encoder threads busy while the engine ran and slowed the bare figure.
                word_vectors = dict(zip(words, bundle.text.embed_words(words), strict=True))
                for mode in ("semantic", "hybrid"):
                    suffix = "" if mode == "semantic" else "&mode=hybrid"
                    for word in words[:10]:  # warm connections and caches
                        get(base + urllib.parse.quote(word) + suffix)
                    wall, total, inside, bare = [], [], [], []
                    for word in words:
                        ms, body = get(base + urllib.parse.quote(word) + suffix)
                        timings = body["explain"]["timings_ms"]
                        wall.append(ms)
                        total.append(timings["total"])
                        inside.append(timings.get("backend", 0.0))
                        # The engine alone: the same kNN request with the query's vector, from Python.
                        vector = word_vectors[word]
                        plan = body["explain"]["plan"]
                        started = time.perf_counter()
                        if mode == "hybrid":  # both lists, as the service asks for them
                            backend.knn(vector, plan["window"], plan["num_candidates"], ranked_top=args.k)
                            backend.keyword(word, plan["window"])
                        else:
                            backend.knn(vector, args.k, plan["num_candidates"])
                        bare.append((time.perf_counter() - started) * 1000.0)
                    rows[mode] = {
                        "get_p50_ms": p(wall, 50),
                        "get_p99_ms": p(wall, 99),
                        "service_total_p50_ms": p(total, 50),
                        "service_backend_p50_ms": p(inside, 50),
                        "service_own_p50_ms": statistics.median(t - b for t, b in zip(total, inside, strict=True)),
                        "bare_knn_p50_ms": p(bare, 50),
                        "bare_knn_p99_ms": p(bare, 99),
                    }
            finally:
                server.terminate()
                server.wait(timeout=60)
            backend.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {"n": args.n, "queries": len(words), "k": args.k, "load_s": load_s, "load": os.getloadavg(), **facts}
    lines = [
        f"{args.n:,} posts (real vectors), Elasticsearch, {len(words)} held-out word queries, k = {args.k}; "
        f"loaded in {load_s:.0f} s, {facts.get('segments')} segments once merges settled "
        f"({facts.get('settle_s', 0):.0f} s later); load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "",
        "| mode | GET /search p50 / p99 ms | service total p50 | inside backend calls p50 | service's own p50 "
        "| bare backend calls p50 / p99 ms | GET p50 ÷ bare p50 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, r in rows.items():
        lines.append(
            f"| {mode} | {r['get_p50_ms']:.1f} / {r['get_p99_ms']:.1f} | {r['service_total_p50_ms']:.1f} | "
            f"{r['service_backend_p50_ms']:.1f} | {r['service_own_p50_ms']:.1f} | "
            f"{r['bare_knn_p50_ms']:.1f} / {r['bare_knn_p99_ms']:.1f} | {r['get_p50_ms'] / r['bare_knn_p50_ms']:.2f} |"
        )
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_latency.md").write_text("\n".join(lines) + "\n")
    (args.out / "search_latency.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
