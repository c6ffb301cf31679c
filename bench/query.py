"""Query benchmark: what the query module adds on top of the bare backend call.

    python bench/query.py --n 100000               # by hand: embedded + Elasticsearch (JOINTSPACE_ES_URL)
    python bench/query.py --n 5000 --skip-es       # a quick look
    python bench/query.py --n 100000 --start-es    # starts a local node in a temporary home

N synthetic posts (3 words of a 2,000-word vocabulary each: the vector is their normalised sum
plus noise, the caption their text; 10 cities) and a synthetic text encoder with cached unit
vectors, so the figures measure the module, not a model. For each backend, in the same run:
the bare `backend.knn` (and `knn` + `keyword` for hybrid) with precomputed vectors, then
`SearchService.search` on the same expressions. The module's own time is the search's total
minus the time spent inside backend calls (`explain.timings_ms`). Writes a markdown table and
JSON to --out.
"""

from __future__ import annotations

import os

# One BLAS thread: a query's matrix-vector products are small, and on a busy 2-core machine
# waking a second BLAS thread costs more (milliseconds) than the product itself.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.backends import open_backend
from jointspace.query.algebra import combine, weighted_terms
from jointspace.query.keyword import keyword_query
from jointspace.query.planner import plan_page
from jointspace.query.resolve import resolve
from jointspace.query.service import SearchResult, SearchService
from tqdm import tqdm

from jointspace.protocols import SearchBackend
from jointspace.records import Document, Filters, Post
from jointspace.settings import Settings

CITIES = ("london", "paris", "newyork", "sydney", "toronto", "chicago", "miami", "losangeles", "melbourne", "singapore")
VOCABULARY = 2_000
MODEL = "bench-query"


def pseudo_words(n: int, rng: np.random.Generator) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < n:
        length = int(rng.integers(2, 4))
        words.add("".join(rng.choice(list(consonants)) + rng.choice(list(vowels)) for _ in range(length)))
    return sorted(words)


class SyntheticEncoder:
    """A TextEncoder over a fixed table of random unit vectors (no model: only lookups and one matmul)."""

    embeds_unseen_words = False

    def __init__(self, words: list[str], dim: int, rng: np.random.Generator) -> None:
        self.name, self.dim, self.words = MODEL, dim, words
        table = rng.standard_normal((len(words), dim)).astype(np.float32)
        self.table = table / np.linalg.norm(table, axis=1, keepdims=True)
        self.index = {w: i for i, w in enumerate(words)}

    def has_word(self, word: str) -> bool:
        return word in self.index

    def vocabulary(self) -> Sequence[str]:
        return self.words

    def embed_words(self, words: Sequence[str]) -> np.ndarray:
        return self.table[[self.index[w] for w in words]]

    def embed_caption(self, caption: str, hashtags: Sequence[str] = ()) -> np.ndarray:
        rows = [self.index[w] for w in caption.split() if w in self.index]
        total = self.table[rows].sum(axis=0) if rows else np.zeros(self.dim, np.float32)
        return total / max(float(np.linalg.norm(total)), 1e-12)

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        sims = self.table @ vector
        top = np.argpartition(-sims, k)[:k]
        return [(self.words[i], float(sims[i])) for i in top[np.argsort(-sims[top])]]


def posts(n: int, encoder: SyntheticEncoder, rng: np.random.Generator) -> Iterator[Document]:
    start = datetime(2018, 1, 1)
    for i in range(n):
        picks = rng.choice(len(encoder.words), 3, replace=False)
        vector = (
            encoder.table[picks].sum(axis=0)
            + 0.3 * rng.standard_normal(encoder.dim).astype(np.float32) / np.sqrt(encoder.dim) * 10
        )
        vector /= np.linalg.norm(vector)
        words = [encoder.words[p] for p in picks]
        post = Post(
            id=f"p{i}",
            image=f"/bench/{i}.jpg",
            caption=" ".join(words),
            hashtags=(words[0],),
            city=CITIES[i % len(CITIES)],
            created_at=start + timedelta(minutes=i),
            source="bench",
        )
        yield Document(post=post, vector=vector.astype(np.float32), model=MODEL)


def expressions(count: int, words: list[str], n: int, rng: np.random.Generator) -> list[str]:
    def w() -> str:
        return words[int(rng.integers(len(words)))]

    templates: list[Callable[[], str]] = [
        lambda: w(),
        lambda: f"{w()}+{w()}",
        lambda: f"{w()}-{w()}",
        lambda: f"2*{w()}-0.5*{w()} city:london",
        lambda: f"[img:p{int(rng.integers(n))}]+{w()}",
        lambda: f"{w()}+{w()}+{w()}-{w()}",
        lambda: f"2*({w()}+{w()})-{w()}",
        lambda: f'"{w()} {w()}" + {w()}',
    ]
    return [templates[i % len(templates)]() for i in range(count)]


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000.0


def bench_backend(
    name: str, backend: SearchBackend, encoder: SyntheticEncoder, settings: Settings, exprs: list[str], k: int
) -> list[dict[str, Any]]:
    service = SearchService(backend, encoder, settings)
    plan = plan_page(k, 1, settings)
    prepared = []
    for expr in exprs:  # the vectors and keyword text the bare calls get, computed outside the timing
        parsed = service.parse(expr)
        terms = weighted_terms(parsed.expression)
        vector = combine(terms, resolve([t.term for t in terms], encoder, backend, expr), expr)
        prepared.append((expr, vector, parsed.filters, keyword_query(terms).text))
    rows: list[dict[str, Any]] = []

    def run(
        label: str, bare: Callable[[np.ndarray, Filters, str], object], search: Callable[[str], SearchResult]
    ) -> None:
        for expr, vector, filters, text in prepared[:10]:  # warm caches and connections
            bare(vector, filters, text)
            search(expr)
        bare_ms, total_ms, own_ms, core_ms = [], [], [], []
        for expr, vector, filters, text in tqdm(prepared, desc=f"{name} {label}", leave=False):
            bare_ms.append(timed(partial(bare, vector, filters, text)))
            result = search(expr)
            timings = result.explain["timings_ms"]
            total_ms.append(timings["total"])
            own_ms.append(timings["total"] - timings.get("backend", 0.0))
            # parse, encode, plan, fuse, collapse: the module's core, without the explanation
            # (whose nearest-word lookup is the text encoder's work, switched off by
            # JOINTSPACE_EXPLAIN_NEAREST_WORDS=0).
            core_ms.append(own_ms[-1] - timings.get("explain", 0.0))
        (b50, b99), (t50, t99), (o50, o99) = percentiles(bare_ms), percentiles(total_ms), percentiles(own_ms)
        c50, c99 = percentiles(core_ms)
        rows.append(
            {
                "backend": name,
                "query": label,
                "bare_p50_ms": b50,
                "bare_p99_ms": b99,
                "search_p50_ms": t50,
                "search_p99_ms": t99,
                "own_p50_ms": o50,
                "own_p99_ms": o99,
                "core_p50_ms": c50,
                "core_p99_ms": c99,
                "own_share_p50": o50 / t50 if t50 else 0.0,
                "search_over_bare_p50": t50 / b50 if b50 else 0.0,
            }
        )

    def knn(v: np.ndarray, f: Filters, t: str) -> object:
        return backend.knn(v, k, plan.num_candidates, f)

    def hybrid_bare(v: np.ndarray, f: Filters, t: str) -> object:
        return backend.knn(v, plan.window, plan.num_candidates, f, ranked_top=k), backend.keyword(t, plan.window, f)

    run("semantic, no collapse", knn, lambda e: service.search(e, k=k, collapse=False))
    run("semantic + collapse", knn, lambda e: service.search(e, k=k))
    run("hybrid, no collapse", hybrid_bare, lambda e: service.search(e, k=k, mode="hybrid", collapse=False))
    run("hybrid + collapse", hybrid_bare, lambda e: service.search(e, k=k, mode="hybrid"))
    return rows


def bench_parse_encode(
    encoder: SyntheticEncoder, backend: SearchBackend, settings: Settings, exprs: list[str]
) -> dict[str, float]:
    service = SearchService(backend, encoder, settings)
    words_only = [e for e in exprs if "[img:" not in e]
    parse_ms = [timed(partial(service.parse, e)) for e in exprs]
    encode_ms = [timed(partial(service.query_vector, e)) for e in words_only]
    return {
        "parse_p50_ms": percentiles(parse_ms)[0],
        "parse_p99_ms": percentiles(parse_ms)[1],
        "parse_encode_p50_ms": percentiles(encode_ms)[0],
        "parse_encode_p99_ms": percentiles(encode_ms)[1],
    }


def index(backend: SearchBackend, docs: Iterator[Document], n: int, chunk: int = 2_000) -> float:
    start = time.perf_counter()
    batch: list[Document] = []
    with tqdm(total=n, desc="index", leave=False) as bar:
        for doc in docs:
            batch.append(doc)
            if len(batch) == chunk:
                backend.upsert(batch)
                bar.update(len(batch))
                batch = []
        if batch:
            backend.upsert(batch)
            bar.update(len(batch))
    backend.refresh()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="posts to index")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("bench/out/query"))
    ap.add_argument("--skip-es", action="store_true")
    ap.add_argument("--start-es", action="store_true", help="start a local node (jointspace.services)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    encoder = SyntheticEncoder(pseudo_words(VOCABULARY, rng), args.dim, rng)
    exprs = expressions(args.queries, encoder.words, args.n, rng)
    home = Path(tempfile.mkdtemp(prefix="jointspace-bench-query-"))
    rows: list[dict[str, Any]] = []
    meta: dict[str, Any] = {
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "k": args.k,
        "vocabulary": VOCABULARY,
    }
    local_es = None
    try:
        settings = Settings(home=home, es_url=None)
        embedded = open_backend(settings, MODEL, args.dim)
        meta["embedded_index_s"] = index(embedded, posts(args.n, encoder, np.random.default_rng(1)), args.n)
        meta |= bench_parse_encode(encoder, embedded, settings, exprs)
        rows += bench_backend("embedded", embedded, encoder, settings, exprs, args.k)
        embedded.close()
        if not args.skip_es:
            es_url = os.environ.get("JOINTSPACE_ES_URL")
            if args.start_es:
                from jointspace.services.elasticsearch_local import LocalElasticsearch

                local_es = LocalElasticsearch(home / "es", owner_pid=os.getpid())
                es_url = local_es.start(nodes=1, heap="1g").state.url
            if not es_url:
                raise SystemExit("set JOINTSPACE_ES_URL (jointspace es start), pass --start-es, or --skip-es")
            es_settings = Settings(home=home, es_url=es_url, es_request_timeout_s=120)
            es = open_backend(es_settings, MODEL, args.dim)
            alias = getattr(es, "alias", "posts")
            meta["es_index_s"] = index(es, posts(args.n, encoder, np.random.default_rng(1)), args.n)
            rows += bench_backend("elasticsearch", es, encoder, es_settings, exprs, args.k)
            es.client.indices.delete(index=f"{alias}-{MODEL}-*")  # type: ignore[attr-defined]  # ES only
            es.close()
    finally:
        if local_es is not None:
            local_es.stop()
        shutil.rmtree(home, ignore_errors=True)
    report(args.out, rows, meta)


def report(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    lines = [
        f"# Query benchmark: {meta['n']:,} posts, {meta['dim']} dims, {meta['queries']} queries, k={meta['k']}",
        "",
        f"parse p50 {meta['parse_p50_ms']:.3f} ms (p99 {meta['parse_p99_ms']:.3f}); parse + encode "
        f"(words, phrases) p50 {meta['parse_encode_p50_ms']:.3f} ms (p99 {meta['parse_encode_p99_ms']:.3f})",
        "",
        "| backend | query | bare p50 / p99 ms | search p50 / p99 ms | own p50 / p99 ms | own share "
        "| own without explain p50 / p99 ms | search ÷ bare |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['query']} | {r['bare_p50_ms']:.2f} / {r['bare_p99_ms']:.2f} | "
            f"{r['search_p50_ms']:.2f} / {r['search_p99_ms']:.2f} | {r['own_p50_ms']:.2f} / "
            f"{r['own_p99_ms']:.2f} | {100 * r['own_share_p50']:.1f} % | {r['core_p50_ms']:.2f} / "
            f"{r['core_p99_ms']:.2f} | {r['search_over_bare_p50']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "query.md").write_text(text, encoding="utf-8")
    (out / "query.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
