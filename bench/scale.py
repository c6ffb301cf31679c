"""Scale benchmark: N posts (synthetic unit vectors + short captions, 10 cities) on one Elasticsearch
node with `hnsw` and `int8_hnsw`, and on the embedded backend; recall@10 against exact search.

    python bench/scale.py --n 1000000            # by hand (about an hour on 2 cores)
    python bench/scale.py --n 20000              # what CI-sized runs use

Uses JOINTSPACE_ES_URL (e.g. from `jointspace es start --heap 4g`), else starts a node of its own in
a temporary home (`--es-heap`, not timed) and stops it at the end; `--skip-es` for the embedded only.
Writes a markdown table, a JSON file and a PNG plot to --out.
Exact search (a numpy dot product over all vectors, in the same run) is both the ground truth for
recall and the latency baseline the figures are divided by.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jointspace.backends import open_backend
from jointspace.records import Document, Filters, Post
from jointspace.settings import Settings

CITIES = ("london", "paris", "newyork", "sydney", "toronto", "chicago", "miami", "losangeles",
          "melbourne", "singapore")
WORDS = ("beach sunset city night street food coffee dog park bike car snow rain river "
         "bridge tower museum skyline friends summer winter travel art music").split()


@dataclass
class Row:
    backend: str
    index_options: str
    num_candidates: int | None
    filtered: bool
    recall_at_10: float
    p50_ms: float
    p99_ms: float


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def documents(vectors: np.ndarray, model: str) -> Iterator[Document]:
    rng = np.random.default_rng(7)
    base = datetime(2017, 1, 1, tzinfo=timezone.utc)
    for i, vec in enumerate(vectors):
        words = rng.choice(WORDS, size=5)
        yield Document(
            post=Post(id=f"p{i}", image=f"/bench/{i}.jpg", caption=" ".join(words),
                      hashtags=tuple(words[:2]), city=CITIES[i % len(CITIES)],
                      created_at=base + timedelta(minutes=i), source="bench"),
            vector=vec, model=model)


def index_all(backend, vectors: np.ndarray, model: str, chunk: int) -> float:
    """Seconds to upsert every document and make it searchable."""
    def upsert(batch: list[Document]) -> None:
        result = backend.upsert(batch)
        assert not result.errors, list(result.errors.items())[:3]

    start = time.perf_counter()
    batch: list[Document] = []
    for doc in tqdm(documents(vectors, model), total=len(vectors), desc=f"index {model}", unit="doc"):
        batch.append(doc)
        if len(batch) == chunk:
            upsert(batch)
            batch = []
    if batch:
        upsert(batch)
    backend.refresh()
    return time.perf_counter() - start


def exact_top10(vectors: np.ndarray, queries: np.ndarray, mask: np.ndarray | None) -> list[set[str]]:
    scores = queries @ vectors.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    return [{f"p{j}" for j in row} for row in top]


def exact_single_query_ms(vectors: np.ndarray, queries: np.ndarray) -> float:
    """p50 of one query's exact top-10 in numpy, in RAM: the latency every figure is divided by."""
    times = []
    for q in queries[:20]:
        t = time.perf_counter()
        scores = vectors @ q
        np.argpartition(-scores, 10)[:10]
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def measure(backend, queries: np.ndarray, truth: list[set[str]], num_candidates: int | None,
            filters: Filters | None) -> tuple[float, float, float]:
    latencies, recalls = [], []
    backend.knn(queries[0], 10, num_candidates, filters)  # warm caches once
    for q, expected in zip(queries, truth):
        t = time.perf_counter()
        hits = backend.knn(q, 10, num_candidates, filters)
        latencies.append((time.perf_counter() - t) * 1000)
        recalls.append(len({h.id for h in hits} & expected) / 10)
    return float(np.mean(recalls)), float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--num-candidates", type=int, nargs=2, default=(100, 500))
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("bench/out/scale"))
    ap.add_argument("--skip-es", action="store_true")
    ap.add_argument("--skip-embedded", action="store_true")
    ap.add_argument("--index-options", nargs="+", default=["int8_hnsw", "hnsw"], choices=["int8_hnsw", "hnsw"],
                    help="Elasticsearch index types, in this order (the default int8_hnsw first)")
    ap.add_argument("--es-heap", default="2g", help="heap of the node started when JOINTSPACE_ES_URL is unset")
    ap.add_argument("--forcemerge", action="store_true",
                    help="merge each ES index to one segment before querying (slow at 1M; quicker queries)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    vectors = unit_vectors(args.n, args.dim, seed=1)
    queries = unit_vectors(args.queries, args.dim, seed=2)
    city_mask = np.arange(args.n) % len(CITIES) == 0  # the posts `documents` gives CITIES[0]
    city_filter = Filters(cities=(CITIES[0],))

    exact_ms = exact_single_query_ms(vectors, queries)
    truth = exact_top10(vectors, queries, None)
    truth_f = exact_top10(vectors, queries, city_mask)

    rows: list[Row] = []
    meta: dict[str, object] = {"n": args.n, "dim": args.dim, "queries": args.queries,
                               "numpy_exact_ms_per_query": exact_ms}

    home = Path(tempfile.mkdtemp(prefix="jointspace-scale-"))
    try:
        if not args.skip_embedded:
            bench_embedded(home, vectors, queries, truth, truth_f, city_filter, args, meta, rows)
        if not args.skip_es:
            with elasticsearch_node(home, args.es_heap) as es_url:
                bench_elasticsearch(es_url, home, vectors, queries, truth, truth_f, city_filter, args, meta, rows)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    write_report(args.out, rows, meta)


def bench_embedded(home: Path, vectors: np.ndarray, queries: np.ndarray, truth: list[set[str]],
                   truth_f: list[set[str]], city_filter: Filters, args: argparse.Namespace,
                   meta: dict[str, object], rows: list[Row]) -> None:
    emb = open_backend(Settings(home=home, es_url=None), "bench-embedded", args.dim)
    meta["embedded_index_s"] = index_all(emb, vectors, "bench-embedded", args.chunk)
    meta["embedded_docs_per_s"] = args.n / meta["embedded_index_s"]
    meta["embedded_disk_bytes"] = dir_size(home)
    for filtered, tr, flt in ((False, truth, None), (True, truth_f, city_filter)):
        r, p50, p99 = measure(emb, queries, tr, None, flt)
        rows.append(Row("embedded", "exact", None, filtered, r, p50, p99))
    emb.close()
    write_report(args.out, rows, meta)  # partial figures survive an interrupted long run


@contextmanager
def elasticsearch_node(home: Path, heap: str) -> Iterator[str]:
    """JOINTSPACE_ES_URL when set, else a node of our own for the run."""
    if url := os.environ.get("JOINTSPACE_ES_URL"):
        yield url.rstrip("/")
        return
    from jointspace.services.elasticsearch_local import LocalElasticsearch

    node = LocalElasticsearch(home / "es", owner_pid=os.getpid())
    started = node.start(nodes=1, heap=heap, timeout_s=300)
    try:
        yield started.state.url
    finally:
        node.stop(grace_s=30)


def bench_elasticsearch(es_url: str, home: Path, vectors: np.ndarray, queries: np.ndarray,
                        truth: list[set[str]], truth_f: list[set[str]], city_filter: Filters,
                        args: argparse.Namespace, meta: dict[str, object], rows: list[Row]) -> None:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es_url, request_timeout=600)
    for options in args.index_options:
        model = alias = f"bench-{options.replace('_', '-')}"
        client.indices.delete(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
        settings = Settings(home=home, es_url=es_url, es_index_options=options, es_index_alias=alias,
                            es_shards=1, es_replicas=0, es_request_timeout_s=600)
        es = open_backend(settings, model, args.dim)
        # Bulk-load practice: no refreshes while loading, so segments (and HNSW graphs) are built
        # fewer times; searchable again at the refresh below.
        client.indices.put_settings(index=alias, settings={"index": {"refresh_interval": "-1"}})
        seconds = index_all(es, vectors, model, args.chunk)
        client.indices.put_settings(index=alias, settings={"index": {"refresh_interval": None}})
        meta[f"es_{options}_index_s"] = seconds
        meta[f"es_{options}_docs_per_s"] = args.n / seconds
        if args.forcemerge:
            t = time.perf_counter()
            client.indices.forcemerge(index=alias, max_num_segments=1, request_timeout=7200)
            meta[f"es_{options}_forcemerge_s"] = time.perf_counter() - t
        client.indices.refresh(index=alias)
        stats = client.indices.stats(index=alias)["_all"]["primaries"]
        nodes = client.nodes.stats(metric="jvm")["nodes"]
        meta[f"es_{options}_disk_bytes"] = stats["store"]["size_in_bytes"]
        meta[f"es_{options}_segments"] = stats["segments"]["count"]
        meta[f"es_{options}_heap_used_bytes"] = sum(n["jvm"]["mem"]["heap_used_in_bytes"] for n in nodes.values())
        meta["es_heap_max_bytes"] = sum(n["jvm"]["mem"]["heap_max_in_bytes"] for n in nodes.values())
        for nc in args.num_candidates:
            for filtered, tr, flt in ((False, truth, None), (True, truth_f, city_filter)):
                r, p50, p99 = measure(es, queries, tr, nc, flt)
                rows.append(Row("elasticsearch", options, nc, filtered, r, p50, p99))
        es.close()
        client.indices.delete(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
        write_report(args.out, rows, meta)
    client.close()


def write_report(out: Path, rows: list[Row], meta: dict[str, object]) -> None:
    exact = float(meta["numpy_exact_ms_per_query"])
    lines = [f"# Scale benchmark: {meta['n']:,} posts, {meta['dim']} dims, {meta['queries']} queries, k=10", "",
             f"Baseline: exact top-10 by one numpy dot product over all vectors in RAM, {exact:.2f} ms a query (p50, same run).", "",
             "| backend | index | num_candidates | filter 1/10 | recall@10 | p50 ms | p99 ms | p50 / numpy exact |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.backend} | {r.index_options} | {r.num_candidates or '-'} | {'yes' if r.filtered else 'no'} "
                     f"| {r.recall_at_10:.3f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.p50_ms / exact:.2f} |")
    lines += ["", "| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:,.1f} |" if isinstance(v, float) else f"| {k} | {v:,} |" for k, v in meta.items()]
    table = "\n".join(lines)
    (out / "scale.md").write_text(table + "\n")
    (out / "scale.json").write_text(json.dumps({"meta": meta, "rows": [r.__dict__ for r in rows]}, indent=2))
    print(table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        label = f"{r.backend} {r.index_options} nc={r.num_candidates or '-'}{' filtered' if r.filtered else ''}"
        ax.scatter(r.p50_ms, r.recall_at_10, label=label, marker="o" if not r.filtered else "s")
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency, ms (log)")
    ax.set_ylabel("recall@10 vs exact")
    ax.set_title(f"{meta['n']:,} posts, {meta['dim']} dims")
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "scale.png", dpi=120)
    print(f"wrote {out / 'scale.md'}, {out / 'scale.png'}")


if __name__ == "__main__":
    main()
