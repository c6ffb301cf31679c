"""Scale benchmark: N posts on one Elasticsearch node and on the embedded store; recall@10 and
latency of every configuration against exact numpy search timed in the same run.

    python bench/scale.py --n 100000 --vectors real      # real-distribution vectors (bench/real_vectors.py)
    python bench/scale.py --n 20000 --vectors real       # what CI runs (tests/bench/test_scale_bench.py)
    python bench/scale.py --n 1000000 --vectors random   # uniform noise: HNSW's worst case

`--vectors real`: the default bundle's sentence model embedding distinct English texts (WordNet
glosses, dictionary words), cached so a rerun embeds nothing; queries are held-out texts' vectors.
`--vectors random`: uniform random unit vectors and random unit queries.

Posts carry a city (10, so a city filter keeps 1/10), a source (100: 1/100) and a hashtag
(1,000: 1/1000). Every configuration is measured unfiltered and with each of those filters, at
each `--num-candidates` (Elasticsearch's num_candidates; the embedded graph's efSearch) and at the
defaults a user gets (`default` rows). Elasticsearch: `--es-configs` (bbq_hnsw with rescoring, the
default; int8_hnsw with and without rescoring by the float vectors; hnsw), one shard, bulk-loaded with
refresh off, `--forcemerge` to also measure after merging to one segment.

The embedded store at 1M takes ~20 min to load: `--embedded-home DIR` keeps it and later runs
measure it again (`--walk-factors` for the filtered walk's width, `--filters ... 1/20 1/50` around
the exact/graph switch, `--warm-rounds 1 --rounds 3` to interleave the rows on a shared machine).

Uses JOINTSPACE_ES_URL (e.g. from `jointspace es start --heap 2g`), else starts a node of its own
in a temporary home (`--es-heap`, not timed) and stops it at the end; `--skip-es` for the embedded
only. Writes a markdown table, a JSON file and a PNG plot to --out (after each part, so an
interrupted run keeps what it measured).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from jointspace.backends import open_backend
from jointspace.es_mappings.manager import IndexManager
from tqdm import tqdm

from jointspace.records import Document, Filters, Post
from jointspace.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_vectors import real_vectors

CITIES = ("london", "paris", "newyork", "sydney", "toronto", "chicago", "miami", "losangeles", "melbourne", "singapore")
WORDS = (
    "beach sunset city night street food coffee dog park bike car snow rain river "
    "bridge tower museum skyline friends summer winter travel art music"
).split()
# name → (filter, modulus, residues): it keeps the posts i with i % modulus < residues
FILTERS: dict[str, tuple[Filters | None, int, int]] = {
    "none": (None, 1, 1),
    "1/10": (Filters(cities=(CITIES[0],)), 10, 1),
    "1/100": (Filters(sources=("s0",)), 100, 1),
    "1/1000": (Filters(hashtags=("t0",)), 1000, 1),
    # Not measured by default: between 1/10 and 1/100, where the embedded store switches from its
    # graph to exact search at 1M rows (EMBEDDED_ANN_MIN_ROWS, 50,000 matching rows).
    "1/20": (Filters(sources=tuple(f"s{j}" for j in range(5))), 100, 5),
    "1/50": (Filters(sources=("s0", "s1")), 100, 2),
}
DEFAULT_FILTERS = ["none", "1/10", "1/100", "1/1000"]
IndexOptions = Literal["int8_hnsw", "hnsw", "bbq_hnsw"]  # Settings.es_index_options
ES_CONFIGS: dict[str, tuple[IndexOptions, float]] = {  # name → (index_options, rescore oversample)
    "bbq_hnsw+rescore": ("bbq_hnsw", 3.0),
    "int8_hnsw+rescore": ("int8_hnsw", 3.0),
    "int8_hnsw": ("int8_hnsw", 0.0),
    "hnsw": ("hnsw", 0.0),
}
DEFAULT = Settings()


@dataclass
class Row:
    backend: str
    config: str
    num_candidates: int | None  # None: the default a user gets
    filter: str
    recall_at_10: float
    p50_ms: float
    p99_ms: float
    numpy_exact_ms: float  # exact numpy top-10 over every vector, p50 in this run
    first_ms: float | None = None  # the first query of the row (the store's filter cache cold), not in p50


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def keeps(name: str, n: int) -> np.ndarray:
    """Mask of the posts FILTERS[name] keeps (as `documents` deals cities, sources and tags)."""
    _, modulus, residues = FILTERS[name]
    return np.arange(n) % modulus < residues


def documents(vectors: np.ndarray, model: str) -> Iterator[Document]:
    rng = np.random.default_rng(7)
    base = datetime(2017, 1, 1, tzinfo=UTC)
    for i, vec in enumerate(vectors):
        words = rng.choice(WORDS, size=5)
        yield Document(
            post=Post(
                id=f"p{i}",
                image=f"/bench/{i}.jpg",
                caption=" ".join(words),
                hashtags=(str(words[0]), f"t{i % 1000}"),
                city=CITIES[i % len(CITIES)],
                created_at=base + timedelta(minutes=i),
                source=f"s{i % 100}",
            ),
            vector=vec,
            model=model,
        )


def index_all(
    backend,
    vectors: np.ndarray,
    model: str,
    chunk: int,
    threads: int = 1,
    start_at: int = 0,
    deadline: float | None = None,
) -> tuple[float, int]:
    """(seconds, rows loaded): upserts documents start_at.. and makes them searchable, `threads`
    batches in flight at once (Elasticsearch builds a batch's HNSW graph inserts on the write thread
    that takes the request: one stream of bulk requests keeps one core busy, two keep two). Past
    `deadline` (time.monotonic()) no new batch starts: the rows loaded are then a prefix of `vectors`."""

    def upsert(batch: list[Document]) -> int:
        result = backend.upsert(batch)
        assert not result.errors, list(result.errors.items())[:3]
        return len(batch)

    docs = itertools.islice(documents(vectors, model), start_at, None)
    batches = iter(lambda: list(itertools.islice(docs, chunk)), [])
    start = time.perf_counter()
    loaded = start_at
    with (
        tqdm(total=len(vectors), initial=start_at, desc=f"index {model}", unit="doc", mininterval=10) as bar,
        ThreadPoolExecutor(threads) as pool,
    ):
        pending: set[Future[int]] = set()
        for batch in batches:
            if deadline is not None and time.monotonic() > deadline:
                print(f"\nloading stopped at the deadline (--load-minutes) after {loaded:,} rows", flush=True)
                break
            if len(pending) >= 2 * threads:  # bounded: never more than a few batches in memory
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                bar.update(sum(f.result() for f in finished))
            pending.add(pool.submit(upsert, batch))
            loaded += len(batch)
        for f in pending:
            bar.update(f.result())
    backend.refresh()
    return time.perf_counter() - start, loaded


def exact_top10(vectors: np.ndarray, queries: np.ndarray, mask: np.ndarray) -> list[set[str]]:
    ids = np.flatnonzero(mask)
    scores = queries @ (vectors if len(ids) == len(vectors) else vectors[ids]).T  # no 1.5 GB copy at 1M
    if len(ids) <= 10:  # a filter keeping 10 posts or fewer: all of them are the answer
        return [{f"p{j}" for j in ids} for _ in queries]
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    return [{f"p{ids[j]}" for j in row} for row in top]


def exact_single_query_ms(vectors: np.ndarray, queries: np.ndarray, count: int = 30) -> float:
    """p50 of one query's exact top-10 in numpy over every vector in RAM: the baseline."""
    times = []
    for q in queries[:count]:
        t = time.perf_counter()
        scores = vectors @ q
        np.argpartition(-scores, 10)[:10]
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def measure(
    backend, queries: np.ndarray, truth: list[set[str]], num_candidates: int | None, filters: Filters | None
) -> tuple[float, float, float, float]:
    """(recall@10, p50 ms, p99 ms, the first query's ms): one query warms the caches first, timed apart."""
    recalls, latencies, first_ms = timed_queries(backend, queries, truth, num_candidates, filters)
    return (
        float(np.mean(recalls)),
        float(np.percentile(latencies, 50)),
        float(np.percentile(latencies, 99)),
        first_ms,
    )


def timed_queries(
    backend, queries: np.ndarray, truth: list[set[str]], num_candidates: int | None, filters: Filters | None
) -> tuple[list[float], list[float], float]:
    """(recall@10 of each query, ms of each query, the first query's ms): one query warms the caches
    first, timed apart."""
    latencies, recalls = [], []
    t = time.perf_counter()
    backend.knn(queries[0], 10, num_candidates, filters)  # warm caches once
    first_ms = (time.perf_counter() - t) * 1000
    for q, expected in zip(queries, truth, strict=True):
        t = time.perf_counter()
        hits = backend.knn(q, 10, num_candidates, filters)
        latencies.append((time.perf_counter() - t) * 1000)
        recalls.append(len({h.id for h in hits} & expected) / len(expected))
    return recalls, latencies, first_ms


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def rss_bytes() -> tuple[int, int]:
    """(resident now, peak resident) of this process, from /proc/self/status."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--vectors", choices=["real", "random"], default="real")
    ap.add_argument("--dim", type=int, default=384, help="random vectors only (real ones are the model's 384)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument(
        "--num-candidates",
        type=int,
        nargs="*",
        default=[50, 100, 200, 500, 1000, 2000],
        help="swept besides the defaults (empty: the defaults only)",
    )
    ap.add_argument("--filters", nargs="+", default=DEFAULT_FILTERS, choices=list(FILTERS))
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("bench/out/scale"))
    ap.add_argument("--cache", type=Path, default=None, help="real vectors' cache (bench/real_vectors.py)")
    ap.add_argument("--skip-es", action="store_true")
    ap.add_argument("--skip-embedded", action="store_true")
    ap.add_argument(
        "--es-configs",
        nargs="+",
        default=list(ES_CONFIGS),
        choices=list(ES_CONFIGS),
        help="Elasticsearch configurations, in this order (the default bbq_hnsw+rescore first)",
    )
    ap.add_argument("--es-heap", default="2g", help="heap of the node started when JOINTSPACE_ES_URL is unset")
    ap.add_argument(
        "--forcemerge", action="store_true", help="also measure each ES index merged to one segment (--merged both)"
    )
    ap.add_argument(
        "--merged",
        choices=["no", "yes", "both"],
        default=None,
        help="measure each ES index as loaded (no), merged to one segment (yes) or both "
        "(default: no; both with --forcemerge)",
    )
    ap.add_argument(
        "--load-threads", type=int, default=2, help="bulk requests in flight while loading Elasticsearch (its cores)"
    )
    ap.add_argument(
        "--keep-indices",
        action="store_true",
        help="leave the ES indices in place at the end, and reuse one that already holds --n documents "
        "(with JOINTSPACE_ES_URL: load 1M once, then measure in several runs)",
    )
    ap.add_argument(
        "--load-minutes",
        type=float,
        default=None,
        help="stop loading each ES index after this long and measure the prefix loaded (meta es_n)",
    )
    ap.add_argument(
        "--embedded-home",
        type=Path,
        default=None,
        help="keep the embedded store in this home (not a temporary one) and reuse it when it already "
        "holds --n posts: load 1M once, then measure in several runs (loading figures from the run that loaded)",
    )
    ap.add_argument(
        "--walk-factors",
        type=float,
        nargs="*",
        default=[],
        help="embedded: also measure the store as a user gets it with these AnnParams.filter_walk_factor "
        "values (config 'default wf=F'; the filtered walk's width, F × k ÷ share)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="embedded: measure every configuration and filter this many times, interleaved, pooling the "
        "queries' times (a shared machine's drift falls on all rows alike)",
    )
    ap.add_argument(
        "--warm-rounds", type=int, default=0, help="embedded: untimed rounds first (page cache: graph, vector file)"
    )
    ap.add_argument(
        "--baseline-queries", type=int, default=10, help="numpy exact queries timed before each row (its baseline)"
    )
    args = ap.parse_args()
    args.merged = args.merged or ("both" if args.forcemerge else "no")
    args.out.mkdir(parents=True, exist_ok=True)

    meta: dict[str, Any] = {
        "n": args.n,
        "vectors": args.vectors,
        "queries": args.queries,
        "load_average_start": load_average(),
        "nice": os.nice(0),
    }
    if args.vectors == "real":
        vectors, queries, facts = real_vectors(args.n, args.queries, args.cache)
        meta |= {f"real_{k}": v for k, v in facts.items() if k != "examples"}
    else:
        vectors, queries = unit_vectors(args.n, args.dim, seed=1), unit_vectors(args.queries, args.dim, seed=2)
    meta["dim"] = vectors.shape[1]
    exact_ms = exact_single_query_ms(vectors, queries)
    meta["numpy_exact_ms_per_query"] = exact_ms
    truth = {name: exact_top10(vectors, queries, keeps(name, args.n)) for name in args.filters}
    rows: list[Row] = []

    home = Path(tempfile.mkdtemp(prefix="jointspace-scale-"))
    try:
        if not args.skip_embedded:
            bench_embedded(home, vectors, queries, truth, args, meta, rows)
        if not args.skip_es:
            with elasticsearch_node(home, args.es_heap) as es_url:
                bench_elasticsearch(es_url, home, vectors, queries, truth, args, meta, rows, exact_ms)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    meta["load_average_end"] = load_average()
    write_report(args.out, rows, meta)


def bench_embedded(
    home: Path,
    vectors: np.ndarray,
    queries: np.ndarray,
    truth: dict[str, list[set[str]]],
    args: argparse.Namespace,
    meta: dict[str, Any],
    rows: list[Row],
) -> None:
    """The store as a user gets it (default settings: exact below 50,000 candidate rows, the graph
    above), then the graph forced on at every size (ann_min_rows=1) across efSearch, and exact."""
    from jointspace.backends.ann_index import AnnParams
    from jointspace.backends.embedded import EmbeddedBackend

    settings = Settings(home=args.embedded_home or home, es_url=None)
    model = "bench-embedded"
    loading_file = settings.embedded_dir / "bench-loading.json"  # the loading run's figures, for reruns
    graph_file = settings.embedded_dir / "ann-0.faiss"
    kept = args.embedded_home is not None and EmbeddedBackend.exists(settings.embedded_dir)
    if kept:
        emb = open_backend(settings, model, vectors.shape[1])
        held = emb.count()
        emb.close()
        if held != args.n or not loading_file.exists():
            raise SystemExit(
                f"{settings.embedded_dir} holds {held:,} posts, not a finished load of {args.n:,}: remove it"
            )
        meta |= json.loads(loading_file.read_text()) | {"embedded_store_reused": str(settings.embedded_dir)}
    else:
        rss_before = rss_bytes()[0]
        emb = open_backend(settings, model, vectors.shape[1])
        assert isinstance(emb, EmbeddedBackend)
        loading: dict[str, Any] = {"embedded_index_s": index_all(emb, vectors, model, args.chunk)[0]}
        loading["embedded_docs_per_s"] = args.n / loading["embedded_index_s"]
        # Of the loading, the seconds spent inserting rows into the HNSW graph (faiss, both cores).
        loading["embedded_graph_build_s"] = emb.graph_seconds
        # The writer's memory: the graph it holds (faiss keeps a float copy of every vector in it) and
        # whatever SQLite and the vector file's map made resident.
        loading["embedded_writer_rss_growth_bytes"] = rss_bytes()[0] - rss_before
        emb.close()
        if not graph_file.exists():  # below the threshold no graph was built while loading: build one to sweep
            t = time.perf_counter()
            forced = EmbeddedBackend(settings.embedded_dir, model, vectors.shape[1], ann_min_rows=1)
            forced.update_graph()
            forced.close()
            loading["embedded_graph_build_s"] = time.perf_counter() - t
        loading["embedded_loading_peak_rss_bytes"] = rss_bytes()[1]
        loading_file.write_text(json.dumps(loading))
        meta |= loading
    meta["embedded_graph_bytes"] = graph_file.stat().st_size
    meta["embedded_vector_file_bytes"] = sum(f.stat().st_size for f in settings.embedded_dir.glob("vectors-*.f32"))
    meta["embedded_disk_bytes"] = dir_size(settings.embedded_dir)
    # A num_candidates only widens the graph's walk beyond the store's ef_search: each swept breadth
    # is a store whose own ef_search it is.
    swept = [
        (
            "graph",
            EmbeddedBackend(
                settings.embedded_dir, model, vectors.shape[1], ann_min_rows=1, ann=AnnParams(ef_search=nc)
            ),
            [nc],
        )
        for nc in args.num_candidates
    ]
    variants = [
        ("default", open_backend(settings, model, vectors.shape[1]), [None]),
        ("graph", EmbeddedBackend(settings.embedded_dir, model, vectors.shape[1], ann_min_rows=1), [None]),
        *swept,
        ("exact", EmbeddedBackend(settings.embedded_dir, model, vectors.shape[1], ann_min_rows=10**12), [None]),
    ]
    for factor in args.walk_factors:
        params = replace(AnnParams(ef_search=DEFAULT.embedded_ann_ef_search), filter_walk_factor=factor)
        store = EmbeddedBackend(
            settings.embedded_dir, model, vectors.shape[1], ann_min_rows=DEFAULT.embedded_ann_min_rows, ann=params
        )
        variants.insert(-1, (f"default wf={factor:g}", store, [None]))
    if args.rounds == 1 and not args.warm_rounds:  # one configuration after the other, as before
        for config, backend, candidates in variants:
            for name in args.filters:
                for nc in candidates:
                    # Each row has its own numpy baseline, timed just before it (the shared machine's load drifts).
                    baseline = exact_single_query_ms(vectors, queries, args.baseline_queries)
                    r, p50, p99, first = measure(backend, queries, truth[name], nc, FILTERS[name][0])
                    rows.append(Row("embedded", config, nc, name, r, p50, p99, baseline, first))
            backend.close()
            meta["embedded_peak_rss_bytes"] = rss_bytes()[1]  # the bench's own arrays included
            write_report(args.out, rows, meta)
        return
    # Rounds: every configuration and filter once a round, so the machine's drift (other jobs, the
    # page cache) falls on all of them alike; the untimed warm rounds first fault in the graph and
    # the vector file. A row pools its queries' times over the timed rounds; its baseline is the
    # median of the numpy baselines timed just before it in each round.
    pooled: dict[tuple[str, int | None, str], tuple[list[float], list[float], list[float], float]] = {}
    for round_no in range(args.warm_rounds + args.rounds):
        timed = round_no >= args.warm_rounds
        for config, backend, candidates in variants:
            for name in args.filters:
                for nc in candidates:
                    baseline = exact_single_query_ms(vectors, queries, args.baseline_queries) if timed else 0.0
                    recalls, latencies, first = timed_queries(backend, queries, truth[name], nc, FILTERS[name][0])
                    if timed:
                        entry = pooled.setdefault((config, nc, name), ([], [], [], first))
                        entry[0].extend(recalls)
                        entry[1].extend(latencies)
                        entry[2].append(baseline)
        print(
            f"embedded round {round_no + 1} of {args.warm_rounds + args.rounds} done ({'timed' if timed else 'warm'})"
        )
    for (config, nc, name), (recalls, latencies, baselines, first) in pooled.items():
        rows.append(
            Row(
                "embedded",
                config,
                nc,
                name,
                float(np.mean(recalls)),
                float(np.percentile(latencies, 50)),
                float(np.percentile(latencies, 99)),
                float(np.median(baselines)),
                first,
            )
        )
    meta["embedded_rounds"] = f"{args.warm_rounds} warm + {args.rounds} timed"
    for _, backend, _ in variants:
        backend.close()
    meta["embedded_peak_rss_bytes"] = rss_bytes()[1]  # the bench's own arrays included
    write_report(args.out, rows, meta)


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


def bench_elasticsearch(
    es_url: str,
    home: Path,
    vectors: np.ndarray,
    queries: np.ndarray,
    truth: dict[str, list[set[str]]],
    args: argparse.Namespace,
    meta: dict[str, Any],
    rows: list[Row],
    exact_ms: float,
) -> None:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es_url, request_timeout=600)
    by_index: dict[IndexOptions, list[str]] = {}
    for config in args.es_configs:  # configs that differ only at query time share one index
        by_index.setdefault(ES_CONFIGS[config][0], []).append(config)
    for options, configs in by_index.items():
        model = alias = f"bench-{options.replace('_', '-')}"
        settings = Settings(
            home=home,
            es_url=es_url,
            es_index_options=options,
            es_index_alias=alias,
            es_shards=1,
            es_replicas=0,
            es_request_timeout_s=600,
        )
        n = len(vectors)
        have = 0
        if client.indices.exists_alias(name=alias):
            client.indices.refresh(index=alias)  # an interrupted load left refreshes off
            have = int(client.count(index=alias)["count"])
        if args.keep_indices and have == n and loaded_prefix(client, alias, n) == n:
            print(f"reusing the {n:,} documents of {alias} (--keep-indices)", flush=True)
        else:
            # --keep-indices resumes an interrupted load after the longest prefix of posts it holds
            # (batches in flight when it stopped may have left gaps; posts beyond are dropped below).
            start_at = min(n, loaded_prefix(client, alias, have) // args.chunk * args.chunk) if args.keep_indices else 0
            if not start_at:
                client.indices.delete(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
            es = open_backend(settings, model, vectors.shape[1])
            # Bulk-load practice: no refreshes while loading, so segments (and HNSW graphs) are built
            # fewer times; searchable again at the refresh below.
            client.indices.put_settings(index=alias, settings={"index": {"refresh_interval": "-1"}})
            deadline = time.monotonic() + 60 * args.load_minutes if args.load_minutes is not None else None
            seconds, loaded = index_all(es, vectors, model, args.chunk, args.load_threads, start_at, deadline)
            client.indices.put_settings(index=alias, settings={"index": {"refresh_interval": None}})
            # An exact prefix: drop what an earlier, interrupted load left beyond it.
            beyond = datetime(2017, 1, 1, tzinfo=UTC) + timedelta(minutes=loaded)
            drop_beyond(client, alias, beyond)
            count = int(client.count(index=alias)["count"])
            assert count == loaded, f"{alias} holds {count:,} documents, not the {loaded:,} loaded"
            meta[f"es_{options}_index_s"] = seconds
            meta[f"es_{options}_docs_per_s"] = (loaded - start_at) / seconds
            meta[f"es_{options}_load_threads"] = args.load_threads
            meta[f"es_{options}_load_average_after_loading"] = load_average()
            if start_at:
                meta[f"es_{options}_load_resumed_at"] = start_at
            es.close()
            if loaded < n:  # stopped at --load-minutes: measure the prefix that was loaded
                meta["es_n"] = loaded
                vectors = vectors[:loaded]
                truth = {name: exact_top10(vectors, queries, keeps(name, loaded)) for name in args.filters}
        merges = {"no": (False,), "yes": (True,), "both": (False, True)}[args.merged]
        for merged in merges:
            segments = client.indices.stats(index=alias)["_all"]["primaries"]["segments"]["count"]
            if merged and segments > 1:
                # As `jointspace optimize` does: a task on the node, polled (or a merge already
                # running on the index, waited for), so no request has to outlive it.
                manager = IndexManager(client, settings, alias)
                report = manager.force_merge(max_segments=1, poll_s=10.0, progress=lambda line: print(line, flush=True))
                meta[f"es_{options}_forcemerge_s"] = report.seconds
            stats = client.indices.stats(index=alias)["_all"]["primaries"]
            suffix = "_merged" if merged else ""
            meta[f"es_{options}_disk_bytes{suffix}"] = stats["store"]["size_in_bytes"]
            meta[f"es_{options}_segments{suffix}"] = stats["segments"]["count"]
            nodes = client.nodes.stats(metric="jvm")["nodes"]
            meta[f"es_{options}_heap_used_bytes{suffix}"] = sum(
                n["jvm"]["mem"]["heap_used_in_bytes"] for n in nodes.values()
            )
            backends = {
                config: open_backend(
                    settings.model_copy(update={"es_rescore_oversample": ES_CONFIGS[config][1]}),
                    model,
                    vectors.shape[1],
                    read_only=True,
                )
                for config in configs
            }
            for backend in backends.values():  # warm the caches once (the first queries after loading are slow)
                for q in queries:
                    backend.knn(q, 10, None, None)
            # The defaults a user gets first (every configuration and filter), then the sweep: an
            # interrupted run keeps what matters most. Each row has its own numpy baseline, timed
            # just before it (the machine's load drifts over an hour's run).
            for nc in [None, *args.num_candidates]:
                for config, backend in backends.items():
                    for filter_name in args.filters:
                        baseline = exact_single_query_ms(vectors, queries, args.baseline_queries)
                        r, p50, p99, first = measure(backend, queries, truth[filter_name], nc, FILTERS[filter_name][0])
                        name = config + (" merged" if merged else "")
                        rows.append(Row("elasticsearch", name, nc, filter_name, r, p50, p99, baseline, first))
                write_report(args.out, rows, meta)
            for backend in backends.values():
                backend.close()
        if not args.keep_indices:
            client.indices.delete(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
    client.close()


def drop_beyond(client, alias: str, when: datetime) -> None:
    """Deletes the posts created at or after `when` (the local node has no _delete_by_query)."""
    from elasticsearch.helpers import bulk

    while True:
        client.indices.refresh(index=alias)
        hits = client.search(
            index=alias, query={"range": {"created_at": {"gte": when.isoformat()}}}, size=5000, source=False
        )["hits"]["hits"]
        if not hits:
            return
        bulk(client, ({"_op_type": "delete", "_index": h["_index"], "_id": h["_id"]} for h in hits))


def loaded_prefix(client, alias: str, at_most: int) -> int:
    """The largest m ≤ at_most such that posts p0..p(m-1) are all in the index (post i was created
    i minutes after the base date, so a range count tells whether a prefix is complete)."""
    base = datetime(2017, 1, 1, tzinfo=UTC)

    def complete(m: int) -> bool:
        below = (base + timedelta(minutes=m)).isoformat()
        return int(client.count(index=alias, query={"range": {"created_at": {"lt": below}}})["count"]) == m

    low, high = 0, at_most
    while low < high:  # complete() is true up to the first gap, false after it
        mid = (low + high + 1) // 2
        low, high = (mid, high) if complete(mid) else (low, mid - 1)
    return low


def write_report(out: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    exact = float(meta["numpy_exact_ms_per_query"])
    lines = [
        f"# Scale benchmark: {meta['n']:,} {meta['vectors']} vectors"
        + (f" (Elasticsearch: the first {meta['es_n']:,}, loading cut by --load-minutes)" if "es_n" in meta else "")
        + f", {meta['dim']} dims, "
        f"{meta['queries']} queries, k=10",
        "",
        f"Baseline: exact top-10 by one numpy dot product over all vectors in RAM, {exact:.2f} ms a query "
        f"(p50, at the start of the run; each row has its own, timed just before it). "
        f"Load average at the start {meta['load_average_start']}.",
        "",
        "| backend | config | num_candidates | filter | recall@10 | p50 ms | p99 ms | numpy exact ms "
        "| p50 / numpy exact | first ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        first = f"{r.first_ms:.1f}" if r.first_ms is not None else ""
        lines.append(
            f"| {r.backend} | {r.config} | {r.num_candidates or 'default'} | {r.filter} "
            f"| {r.recall_at_10:.3f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.numpy_exact_ms:.1f} "
            f"| {r.p50_ms / r.numpy_exact_ms:.2f} | {first} |"
        )
    lines += ["", "| figure | value |", "| --- | --- |"]
    lines += [
        f"| {k} | {v:,.1f} |"
        if isinstance(v, float)
        else f"| {k} | {v:,} |"
        if isinstance(v, int)
        else f"| {k} | {v} |"
        for k, v in meta.items()
    ]
    table = "\n".join(lines)
    (out / "scale.md").write_text(table + "\n")
    (out / "scale.json").write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2))
    print(table, flush=True)
    plot(out / "scale.png", rows, meta)
    print(f"wrote {out / 'scale.md'}, {out / 'scale.png'}", flush=True)


def plot(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    """recall@10 against p50 as a multiple of the numpy exact baseline (log), one panel per filter,
    one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    filters = [f for f in FILTERS if any(r.filter == f for r in rows)]
    if not filters:
        return
    fig, axes = plt.subplots(1, len(filters), figsize=(4.2 * len(filters), 4.2), sharey=True, squeeze=False)
    colours = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(f"{r.backend} {r.config}" for r in rows))}
    for ax, name in zip(axes[0], filters, strict=True):
        configs = dict.fromkeys(f"{r.backend} {r.config}" for r in rows if r.filter == name)
        for label in configs:
            points = sorted(
                (r.p50_ms / r.numpy_exact_ms, r.recall_at_10, r.num_candidates)
                for r in rows
                if r.filter == name and f"{r.backend} {r.config}" == label
            )
            swept = [p for p in points if p[2] is not None]
            if swept:
                ax.plot(
                    [p[0] for p in swept], [p[1] for p in swept], marker="o", ms=3, label=label, color=colours[label]
                )
            for p in points:
                if p[2] is None:  # the default: a star in the configuration's colour
                    ax.scatter(
                        p[0], p[1], marker="*", s=90, color=colours[label], label=None if swept else label, zorder=3
                    )
        ax.axvline(1.0, color="grey", ls="--", lw=0.8)
        ax.axvline(0.2, color="grey", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"filter {name}")
        ax.set_xlabel("p50 / numpy exact (log); dotted: 0.2")
    axes[0][0].set_ylabel("recall@10 vs exact")
    axes[0][-1].legend(fontsize=6, loc="lower right")
    n = meta.get("es_n", meta["n"])
    fig.suptitle(f"{n:,} {meta['vectors']} vectors; stars: defaults; x: p50 / numpy exact in the same run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
