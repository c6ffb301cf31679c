"""Queries/s at p99 ≤ 100 ms: the project's own 3-node Elasticsearch cluster (one replica) against one
node, with the same posts and queries, in one run (issue 16, item 6).

    python bench/cluster_qps.py                        # 100,000 posts, nodes started here
    python bench/cluster_qps.py --n 20000 --seconds 10
    python bench/cluster_qps.py --single-url http://a:9200 --cluster-url http://b:9200   # your own

Each setup gets the same N posts (bench/scale.py's documents: real vectors from
bench/real_vectors.py's cache, a city, a source, hashtags) through jointspace's backend with the
defaults (one shard; the cluster with `es_replicas=1`, so two copies of every post on two of the
three nodes). Then closed-loop clients (1, 2, 4, 8, 16 threads; each sends the next request when the
last one answers) run kNN searches through `backend.knn` (k = 20, the default candidates), every
request to the one URL given (the cluster's first node: it routes to either copy). Reports per
concurrency queries/s, p50 and p99, and per setup the highest queries/s whose p99 ≤ 100 ms, with the
ratio cluster ÷ one node.

Nodes started here share this machine's cores: the cluster's three JVMs cannot be faster than one
node on the same two cores, so the ratio measures the cluster's overhead here, not its capacity;
run it with --single-url/--cluster-url against nodes on separate machines for that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from jointspace.protocols import SearchBackend

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_vectors import real_vectors
from scale import index_all

P99_LIMIT_MS = 100.0
MODEL = "bench-cluster-qps"


@contextmanager
def local_es(home: Path, nodes: int, heap: str) -> Iterator[str]:
    from jointspace.services.elasticsearch_local import LocalElasticsearch

    service = LocalElasticsearch(home, owner_pid=os.getpid())
    started = service.start(nodes=nodes, heap=heap)
    try:
        yield started.state.urls[0]
    finally:
        service.stop(grace_s=30)


def closed_loop(backend: SearchBackend, queries: np.ndarray, clients: int, seconds: float, k: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(offset: int) -> None:
        mine: list[float] = []
        i = offset
        while time.monotonic() < deadline:
            started = time.perf_counter()
            backend.knn(queries[i % len(queries)], k)
            mine.append((time.perf_counter() - started) * 1000.0)
            i += clients
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "qps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "requests": len(latencies),
    }


def measure(url: str, replicas: int, vectors: np.ndarray, queries: np.ndarray, args: argparse.Namespace) -> dict:
    from jointspace.backends.elasticsearch import ElasticsearchBackend
    from jointspace.es_mappings.manager import IndexManager

    from jointspace.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="bench-cluster-qps-"))
    settings = Settings(home=home, es_url=url, es_replicas=replicas, es_index_alias=f"bench-qps-r{replicas}")
    backend = ElasticsearchBackend.open(settings, MODEL, vectors.shape[1])
    try:
        load_s, _ = index_all(backend, vectors, MODEL, 2000, threads=2)
        backend.refresh()
        for q in queries[:20]:  # warm the caches: the first requests after a load read from disk
            backend.knn(q, args.k)
        rows = []
        for clients in args.clients:
            row = closed_loop(backend, queries, clients, args.seconds, args.k)
            print(
                f"  {clients:>2} clients: {row['qps']:.1f} q/s, p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms",
                flush=True,
            )
            rows.append(row)
        within = [r["qps"] for r in rows if r["p99_ms"] <= P99_LIMIT_MS]
        return {"load_s": load_s, "rows": rows, "qps_at_p99_limit": max(within, default=0.0)}
    finally:  # the bench's own indices only: a cluster of yours keeps everything else
        manager = IndexManager(backend.client, backend.settings, backend.alias)
        for info in manager.indices():
            backend.client.indices.delete(index=info.name, ignore_unavailable=True)
        backend.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=20)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--seconds", type=float, default=20.0, help="per concurrency level")
    ap.add_argument("--single-url", default=None, help="a one-node Elasticsearch of yours (default: start one)")
    ap.add_argument("--cluster-url", default=None, help="a node of your 3-node cluster (default: start one)")
    ap.add_argument("--single-heap", default="1g")
    ap.add_argument("--cluster-heap", default="512m", help="per node (the default of `jointspace es start`)")
    ap.add_argument("--out", type=Path, default=Path("bench/out/cluster_qps"))
    args = ap.parse_args()

    vectors, queries, facts = real_vectors(args.n, args.queries)
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-qps-"))
    results: dict[str, dict] = {}
    for label, url, nodes, replicas, heap in (
        ("one node", args.single_url, 1, 0, args.single_heap),
        ("3-node cluster, 1 replica", args.cluster_url, 3, 1, args.cluster_heap),
    ):
        print(f"{label}: loading {args.n:,} posts", flush=True)
        if url:
            results[label] = measure(url, replicas, vectors, queries, args)
        else:
            with local_es(tmp / label.split(",")[0].replace(" ", "-"), nodes, heap) as started_url:
                results[label] = measure(started_url, replicas, vectors, queries, args)

    single, cluster = (results[k]["qps_at_p99_limit"] for k in results)
    lines = [
        f"{args.n:,} posts (real vectors), k = {args.k}, {args.seconds:g} s per level, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "",
        "| setup | clients | queries/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, result in results.items():
        for r in result["rows"]:
            lines.append(f"| {label} | {r['clients']} | {r['qps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    ratio = f"{cluster / single:.2f}" if single else "n/a"
    lines += [
        "",
        f"queries/s at p99 ≤ {P99_LIMIT_MS:.0f} ms: one node {single:.1f}, cluster {cluster:.1f}; "
        f"cluster ÷ one node {ratio}",
    ]
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cluster_qps.md").write_text("\n".join(lines) + "\n")
    meta = {"n": args.n, "k": args.k, **{k: v for k, v in facts.items() if k != "examples"}}
    (args.out / "cluster_qps.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
