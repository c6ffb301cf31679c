"""The embedded store's HNSW graph (backends/ann_index.py): recall against exact search, filters that
stay exact, readers that score the rows written since the graph was saved, and a writer killed with
SIGKILL in the middle of ingesting (and of saving the graph) that loses and corrupts nothing.

Small corpora here, so `ann_min_rows` is lowered from its default (50,000) in these tests: the
graph path is what they test."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from jointspace.backends.embedded import EmbeddedBackend

from jointspace.records import Filters
from tests.backends.backend_corpus import MODEL, doc

DIM = 32
CITIES = ("london", "paris", "rome", "oslo")


def clustered(n: int, seed: int, clusters: int = 40) -> np.ndarray:
    """Unit vectors around `clusters` centres: the shape real embeddings have (random ones have none)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(store: EmbeddedBackend, vectors: np.ndarray, first: int = 0, batch: int = 500) -> None:
    for start in range(0, len(vectors), batch):
        result = store.upsert(
            [
                doc(f"p{first + i}", v, city=CITIES[(first + i) % len(CITIES)])
                for i, v in enumerate(vectors[start : start + batch], start=start)
            ]
        )
        assert not result.errors


def exact_ids(vectors: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[str]:
    scores = vectors @ query
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    return [f"p{i}" for i in np.argsort(-scores)[:k]]


def recall(
    store: EmbeddedBackend,
    vectors: np.ndarray,
    queries: np.ndarray,
    filters: Filters | None = None,
    mask: np.ndarray | None = None,
) -> float:
    found = []
    for q in queries:
        hits = store.knn(q, k=10, filters=filters)
        assert len(hits) == 10
        found.append(len({h.id for h in hits} & set(exact_ids(vectors, q, 10, mask))) / 10)
    return float(np.mean(found))


def test_the_graph_finds_what_exact_search_finds_and_filters_stay_exact(tmp_path: Path) -> None:
    vectors, queries = clustered(4_000, seed=1), clustered(50, seed=2)
    store = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=1_000)
    fill(store, vectors)
    assert (tmp_path / "ann-0.faiss").is_file()
    assert recall(store, vectors, queries) >= 0.95
    # One city in four (1,000 rows, at the threshold): the graph with an in-graph filter; every hit is in the city.
    london = np.arange(len(vectors)) % len(CITIES) == 0
    assert recall(store, vectors, queries, Filters(cities=("london",)), london) >= 0.95
    assert all(h.post.city == "london" for h in store.knn(queries[0], 10, filters=Filters(cities=("london",))))
    # A selective filter (below ann_min_rows) is scored exactly: the exact top-10, scores included.
    few = Filters(cities=("paris",))
    paris = np.arange(len(vectors)) % len(CITIES) == 1
    narrow = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=1_001)
    for q in queries[:10]:
        hits = narrow.knn(q, 10, filters=few)
        assert [h.id for h in hits] == exact_ids(vectors, q, 10, paris)
        np.testing.assert_allclose([h.score for h in hits], np.sort(vectors[paris] @ q)[::-1][:10], atol=1e-5)
    narrow.close()
    store.close()


def test_a_reader_scores_rows_written_after_the_saved_graph_exactly(tmp_path: Path) -> None:
    vectors = clustered(3_000, seed=3)
    writer = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=1_000, ann_save_rows=10_000)
    fill(writer, vectors[:2_000])
    saved = (tmp_path / "ann-0.faiss").stat().st_mtime_ns
    fill(writer, vectors[2_000:], first=2_000)  # 1,000 more rows: in the writer's graph, not in the saved file
    assert (tmp_path / "ann-0.faiss").stat().st_mtime_ns == saved
    reader = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=1_000)
    for i in (2_000, 2_500, 2_999, 5):
        hit = reader.knn(vectors[i], k=1)[0]
        assert hit.id == f"p{i}" and hit.score == pytest.approx(1.0, abs=1e-5)
    # An overwrite leaves a dead row in the graph: it is never returned.
    writer.upsert([doc("p5", vectors[6], city="london")])
    hits = reader.knn(vectors[6], k=3)
    assert len({h.id for h in hits}) == 3 and {"p5", "p6"} <= {h.id for h in hits}
    assert all(h.id != "p5" or h.score == pytest.approx(1.0, abs=1e-5) for h in hits)
    reader.close()
    writer.close()  # saves what the writer added since
    assert (tmp_path / "ann-0.faiss").stat().st_mtime_ns != saved


def test_a_row_no_walk_reaches_is_still_found(tmp_path: Path) -> None:
    import faiss

    vectors = clustered(3_000, seed=7)
    writer = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=1_000)
    fill(writer, vectors)
    writer.close()  # saves the whole graph
    # HNSW leaves such rows now and then (1 in 16,000 of these vectors); to get one on purpose, every
    # link to one row is cut out of the saved graph (faiss stops reading a list at its first -1).
    graph = faiss.read_index(str(tmp_path / "ann-0.faiss"))
    assert graph.ntotal == 3_000
    links = faiss.rev_swig_ptr(graph.hnsw.neighbors.data(), graph.hnsw.neighbors.size())
    row = next(r for r in range(500, 3_000) if r != graph.hnsw.entry_point and (links == r).any())
    links[links == row] = -1
    walked = faiss.SearchParametersHNSW(efSearch=400)  # type: ignore[attr-defined]  # missing from faiss's stubs
    assert graph.search(vectors[row : row + 1], 1, params=walked)[1][0][0] != row  # the walk misses it now
    faiss.write_index(graph, str(tmp_path / "ann-0.faiss"))
    # Maps the cut graph; 500, so that a one-city filter (750 rows) walks the graph too.
    reader = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=500)
    hit = reader.knn(vectors[row], k=1)[0]
    assert hit.id == f"p{row}" and hit.score == pytest.approx(1.0, abs=1e-5)
    own = Filters(cities=(CITIES[row % len(CITIES)],))
    hit = reader.knn(vectors[row], k=1, filters=own)[0]
    assert hit.id == f"p{row}" and hit.score == pytest.approx(1.0, abs=1e-5)
    # Scored beside the walk only when the filter lets the row through; other rows still come from the walk.
    other = Filters(cities=(CITIES[(row + 1) % len(CITIES)],))
    assert all(h.id != f"p{row}" for h in reader.knn(vectors[row], k=10, filters=other))
    assert recall(reader, vectors, clustered(30, seed=8)) >= 0.95
    # Overwritten, the post moves to a new row; its old row, dead but still unreachable in the
    # graph, never comes back (it has no post to return).
    reader.upsert([doc(f"p{row}", vectors[row + 1], city=CITIES[row % len(CITIES)])])
    for filters in (None, own):
        hits = reader.knn(vectors[row], k=5, filters=filters)
        assert len(hits) == 5 and all(h.id != f"p{row}" or h.score < 0.999 for h in hits)
    reader.close()


def _ingest_forever(folder: str, batch: int) -> None:
    # Saves the graph after every batch, so that a kill lands in the middle of a save as often as not.
    store = EmbeddedBackend(Path(folder), MODEL, DIM, ann_min_rows=500, ann_save_rows=1)
    vectors = clustered(100_000, seed=11)
    start = store.count()
    while True:
        store.upsert([doc(f"p{i}", vectors[i], city=CITIES[i % len(CITIES)]) for i in range(start, start + batch)])
        start += batch


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_writer_killed_mid_ingest_loses_and_corrupts_nothing(tmp_path: Path) -> None:
    vectors = clustered(100_000, seed=11)
    context = multiprocessing.get_context("spawn")
    rng = np.random.default_rng(0)
    kills = 0
    for _ in range(4):
        writer = context.Process(target=_ingest_forever, args=(str(tmp_path), 200))
        writer.start()
        deadline = time.monotonic() + 120
        while not (tmp_path / "ann-0.faiss").exists():  # the graph exists once 500 rows are in
            assert time.monotonic() < deadline and writer.is_alive()
            time.sleep(0.2)
        time.sleep(float(rng.uniform(0.5, 3.0)))
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        kills += 1
        store = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=500)
        exact = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=10**12)  # the same files, no graph
        n = store.count()
        assert n % 200 == 0 and n >= 600  # whole batches only
        missed = []
        for i in rng.choice(n, 25, replace=False):
            # Nothing lost or corrupted: every committed post is there with its vector, and exact
            # search finds it by that vector.
            stored = store.get(f"p{i}", with_vector=True)
            assert stored is not None and np.allclose(stored.vector, vectors[i], atol=1e-6)
            hit = exact.knn(vectors[i], k=1)[0]
            assert hit.id == f"p{i}" and hit.score == pytest.approx(1.0, abs=1e-5)
            # The graph the killed writers left (extended, or rebuilt) finds it too. The one miss
            # seen in CI was a row pruned out of every neighbour list (16,000 of these vectors,
            # built in 200-row batches, leave one, with no kill at all); such rows are now scored
            # exactly (AnnIndex.unreachable). One miss in 25 is still allowed for what that count
            # cannot see (a few rows linked only among themselves); a killed writer's damage
            # would miss far more.
            hit = store.knn(vectors[i], k=1)[0]
            if hit.id != f"p{i}":
                missed.append((int(i), hit.id, round(hit.score, 4)))
        assert len(missed) <= 1, missed
        assert store.get(f"p{n}") is None
        exact.close()
        store.close()
    assert kills == 4
    # A writer after the kills extends the graph it finds (or rebuilds a damaged one) and carries on.
    store = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=500)
    n = store.count()
    fill(store, vectors[n : n + 400], first=n)
    assert store.count() == n + 400 and store.knn(vectors[n + 399], k=1)[0].id == f"p{n + 399}"
    store.close()
    # Half-written graphs of the killed writers were swept when the next writer opened the graph.
    assert not list(tmp_path.glob("*.tmp"))


def test_a_filter_s_cached_rows_follow_writes_from_any_process(tmp_path: Path) -> None:
    vectors = clustered(300, seed=5)
    reader = EmbeddedBackend(tmp_path, MODEL, DIM)
    writer = EmbeddedBackend(tmp_path, MODEL, DIM)  # another connection: as another process sees it
    fill(writer, vectors[:200])
    paris = Filters(cities=("paris",))
    assert reader.count(paris) == 50 and len(reader.knn(vectors[0], k=100, filters=paris)) == 50
    fill(writer, vectors[200:], first=200)  # 25 more in paris, written by the other connection
    assert len(reader.knn(vectors[0], k=100, filters=paris)) == 75
    writer.delete("p1")  # p1 is in paris (1 % 4 == 1)
    assert "p1" not in {h.id for h in reader.knn(vectors[1], k=100, filters=paris)}
    reader.upsert([doc("p1", vectors[1], city="paris")])  # the reader's own write
    assert reader.knn(vectors[1], k=1, filters=paris)[0].id == "p1"
    reader.close()
    writer.close()


def test_a_dead_writer_s_half_written_graph_goes_when_the_graph_is_next_opened(tmp_path: Path) -> None:
    vectors = clustered(1_200, seed=5)
    store = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=1_000, ann_save_rows=10_000)
    fill(store, vectors[:1_000])
    store.close()
    dead = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    leftover = tmp_path / f"ann-0.faiss.abcdefgh.{dead.pid}.tmp"
    live = tmp_path / f"ann-0.faiss.ijklmnop.{os.getpid()}.tmp"
    leftover.write_bytes(b"half a graph")
    live.write_bytes(b"being written")
    # 200 rows: far below a save (ann_save_rows), so only opening the graph can sweep.
    store = EmbeddedBackend(tmp_path, MODEL, DIM, ann_min_rows=1_000, ann_save_rows=10_000)
    fill(store, vectors[1_000:], first=1_000)
    store.close()
    assert not leftover.exists() and live.exists()


def test_a_filtered_walk_is_as_wide_as_the_filter_is_selective_within_bounds() -> None:
    from jointspace.backends.ann_index import AnnParams

    params = AnnParams(ef_search=400, filter_walk_factor=10.0, ef_search_max=4_000)
    assert params.walk_width(10, 1.0) == 400  # unfiltered: ef_search
    assert params.walk_width(10, 1.0, 500) == 500  # or the caller's num_candidates when wider
    assert params.walk_width(10, 1.0, 100) == 400  # never narrower than the store's own
    assert params.walk_width(10, 0.1) == 1_000  # passes ~10 × k matching rows: 10 × 10 ÷ 0.1
    assert params.walk_width(10, 0.5) == 400  # never narrower than unfiltered
    assert params.walk_width(10, 0.05) == 2_000
    assert params.walk_width(10, 0.001) == 4_000  # bounded
    assert params.walk_width(10, 0.1, 2_000) == 2_000  # a wider num_candidates is kept
    assert params.walk_width(600, 1.0) == 600 and params.walk_width(10, 0.1, 5_000) == 5_000  # never under k or asked
