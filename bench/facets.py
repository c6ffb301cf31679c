"""What facets, trends and newest-first cost, against the plain kNN page they sit beside.

    python bench/facets.py --n 100000 --skip-es              # embedded only
    JOINTSPACE_ES_URL=http://127.0.0.1:9200 python bench/facets.py --n 20000

N synthetic posts (random unit 384-d vectors, 10 cities, 2-3 of 50 hashtags each, 3 sources, one
date in three years), indexed once per backend. For Q random query vectors, in the same run and
interleaved per query: the baseline `knn(k=20)` (one result page), then `facets` over the default
match set (the facet_depth = 1,000 nearest; city, hashtags, source, month), `facets` with a
min_score cut-off (sought among the 10,000 nearest), `newest` (first page of 20) and `trends`
(by city, per month). Prints p50 and p95 in ms and each p50 as a ratio of the baseline's p50, and
writes them as JSON to --out.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small matrix-vector products: one thread (as bench/query.py)

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from jointspace.protocols import SearchBackend
from jointspace.records import FACET_FIELDS, Document, MatchSet, Post
from jointspace.settings import Settings

DIM = 384
MODEL = "bench-facets"
CITIES = ("london", "paris", "newyork", "sydney", "toronto", "chicago", "miami", "berlin", "rome", "tokyo")
START = datetime(2022, 1, 1)


def documents(n: int, seed: int = 1, batch: int = 5_000) -> Iterator[list[Document]]:
    rng = np.random.default_rng(seed)
    for first in range(0, n, batch):
        size = min(batch, n - first)
        vectors = rng.standard_normal((size, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        docs = []
        for i in range(size):
            tags = tuple(f"tag{t}" for t in rng.choice(50, size=int(rng.integers(2, 4)), replace=False))
            post = Post(
                id=f"p{first + i}",
                image=f"/media/{first + i}.jpg",
                caption="",
                hashtags=tags,
                city=CITIES[int(rng.integers(len(CITIES)))],
                source=f"feed-{int(rng.integers(3))}",
                created_at=START + timedelta(minutes=int(rng.integers(3 * 365 * 24 * 60))),
            )
            docs.append(Document(post=post, vector=vectors[i], model=MODEL))
        yield docs


def fill(backend: SearchBackend, n: int) -> float:
    started = time.perf_counter()
    with tqdm(total=n, desc="index", unit="post") as bar:
        for docs in documents(n):
            result = backend.upsert(docs)
            assert not result.errors, list(result.errors.items())[:3]
            bar.update(len(docs))
    backend.refresh()
    return time.perf_counter() - started


def measure(backend: SearchBackend, settings: Settings, queries: np.ndarray) -> dict[str, dict[str, float]]:
    # min_score: random unit vectors' similarities are ~ N(0, 1/DIM), so about 1 % of posts pass 2.33/sqrt(DIM).
    cut = 2.33 / float(np.sqrt(DIM))
    calls: dict[str, Callable[[np.ndarray], object]] = {
        "knn page (baseline)": lambda q: backend.knn(q, 20),
        "facets, facet_depth nearest": lambda q: backend.facets(
            MatchSet(q, settings.facet_depth), FACET_FIELDS, settings.facet_size
        ),
        "facets, min_score cut-off": lambda q: backend.facets(
            MatchSet(q, settings.max_num_candidates, min_score=cut), FACET_FIELDS, settings.facet_size
        ),
        "newest, first page": lambda q: backend.newest(MatchSet(q, settings.facet_depth), 20, 0),
        "trends by city and month": lambda q: backend.trends(
            MatchSet(q, settings.facet_depth), "city", "month", settings.trend_max_series
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up: caches, JIT of the node's first aggregations
        call(queries[0])
    for q in tqdm(queries, desc="queries"):
        for name, call in calls.items():  # interleaved, so load on the machine hits every row alike
            started = time.perf_counter()
            call(q)
            times[name].append((time.perf_counter() - started) * 1000.0)
    base = float(np.median(times["knn page (baseline)"]))
    return {
        name: {
            "p50_ms": round(float(np.median(t)), 2),
            "p95_ms": round(float(np.percentile(t, 95)), 2),
            "ratio_p50": round(float(np.median(t)) / base, 2),
        }
        for name, t in times.items()
    }


def open_backend_for(kind: str, home: Path, es_url: str | None) -> tuple[SearchBackend, Settings]:
    if kind == "embedded":
        from jointspace.backends.embedded import EmbeddedBackend

        settings = Settings(home=home)
        return EmbeddedBackend(home / "embedded", MODEL, DIM), settings
    from jointspace.backends.elasticsearch import ElasticsearchBackend

    settings = Settings(home=home, es_url=es_url, es_index_alias=f"bench-facets-{uuid.uuid4().hex[:8]}")
    return ElasticsearchBackend.open(settings, MODEL, DIM), settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--skip-es", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/out/facets.json"))
    args = parser.parse_args()
    es_url = os.environ.get("JOINTSPACE_ES_URL")
    kinds = ["embedded"] + ([] if args.skip_es or not es_url else ["elasticsearch"])
    rng = np.random.default_rng(99)
    queries = rng.standard_normal((args.queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    report: dict[str, Any] = {"n": args.n, "queries": args.queries, "backends": {}}
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="bench-facets-") as tmp:
            backend, settings = open_backend_for(kind, Path(tmp), es_url)
            try:
                seconds = fill(backend, args.n)
                rows = measure(backend, settings, queries)
            finally:
                if kind == "elasticsearch":
                    backend.client.indices.delete(index=f"{backend.alias}-*")  # type: ignore[attr-defined]  # ES only
                backend.close()
        report["backends"][kind] = {"index_s": round(seconds, 1), "rows": rows}
        print(f"\n{kind}: {args.n} posts (indexed in {seconds:.1f} s), {args.queries} queries")
        print("| call | p50 ms | p95 ms | p50 / baseline p50 |\n| --- | --- | --- | --- |")
        for name, row in rows.items():
            print(f"| {name} | {row['p50_ms']} | {row['p95_ms']} | {row['ratio_p50']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
