"""An HNSW graph over the embedded store's vector file (faiss `IndexHNSWFlat`, inner product).

faiss-cpu rather than hnswlib or usearch: it filters *inside* the graph walk in C++ (an
`IDSelectorBitmap` of allowed rows, so a filtered kNN never calls back into Python per node),
maps a saved index read-only (`IO_FLAG_MMAP_IFC`: every reader process shares one copy in the page
cache), and is maintained by Meta with wheels for every platform here. hnswlib's filter is a
Python callable per visited node and its last release is from 2023; usearch's Python API has no
filtered search.

The graph is a cache, never the truth. Its ids are vector-file row numbers: rows are append-only
and every row below `next_row` holds a committed vector, so an index over rows [0, n) stays valid
for as long as the generation lives (dead rows are excluded by the selector, not removed).
Writers extend it after their commit and save it now and then to `ann-<generation>.faiss`,
written to a temporary name and renamed: a kill -9 leaves the previous file or the new one, never
half of one. A reader maps the saved file and scores the rows written since (the tail) exactly,
so search is always complete, whichever process wrote last.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jointspace.atomic_write import atomic_path
from jointspace.settings import Settings

if TYPE_CHECKING:
    import faiss


def _setting(name: str) -> Any:
    """The default of `Settings.<name>`: one place holds each value (and why it was chosen)."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class AnnParams:
    """Graph shape and search breadth (`JOINTSPACE_EMBEDDED_ANN_*`; the defaults are the settings')."""

    m: int = _setting("embedded_ann_m")
    ef_construction: int = _setting("embedded_ann_ef_construction")
    ef_search: int = _setting("embedded_ann_ef_search")
    # A filtered walk is `filter_walk_factor` × k ÷ share wide (at least ef_search, at most
    # ef_search_max): wide enough to pass about factor × k matching rows, whatever the index size.
    filter_walk_factor: float = _setting("embedded_ann_filter_walk_factor")
    # The cap binds only for filters keeping under factor × k ÷ 4,000 of the rows (1/40 at k = 10),
    # which at 1M rows have fewer matching rows than ann_min_rows and are scored exactly; forced onto
    # the graph of 20,000 real vectors, a 1/1000 filter needs the full 4,000 (0.914 at 2,000).
    ef_search_max: int = 4_000

    def walk_width(self, k: int, share: float, ef_search: int | None = None) -> int:
        """efSearch for a top-k among `share` of the graph's rows (1: no filter).

        The walk's candidate list holds every row it meets, matching or not, and keeps only
        matching ones as results: the k best of a filter keeping one row in ten lie among the
        best ~10k of all, so the walk must reach that far, not ef_search ÷ share (whose cost grows
        as the square of the width in faiss's candidate heap).

        A caller's `ef_search` (the query planner's num_candidates) widens the walk but never
        narrows it below the store's own: that pool is sized for Elasticsearch, whose rescored
        int8 search needs fewer candidates than this float graph for the same recall (at 1M real
        vectors: 100 candidates give Elasticsearch 0.973, this graph needs 400 for 0.980)."""
        base = max(ef_search or 0, self.ef_search, k)
        if share >= 1.0:
            return base
        wanted = self.filter_walk_factor * k / max(share, 1e-9)
        return int(min(max(base, wanted), max(self.ef_search_max, base)))


def index_path(folder: Path, generation: int) -> Path:
    return folder / f"ann-{generation}.faiss"


class AnnIndex:
    """The graph of one generation. Not thread-safe: the backend calls it under its own lock."""

    def __init__(self, path: Path, dim: int, params: AnnParams) -> None:
        self.path = path
        self.dim = dim
        self.params = params
        self._index: faiss.Index | None = None  # an HNSW graph, imported lazily (faiss loads in ~0.2 s)
        self._saved_rows = 0
        self._mapped = False  # a read-only memory map of the saved file: must be copied before adding
        self._loaded_mtime = 0
        self._unreachable: tuple[int, np.ndarray] | None = None  # (graph rows then, unreachable rows); None: count anew

    @property
    def rows(self) -> int:
        """Rows [0, rows) are in the graph."""
        return int(self._index.ntotal) if self._index is not None else 0

    @property
    def unsaved_rows(self) -> int:
        return self.rows - self._saved_rows

    def load(self, max_rows: int) -> bool:
        """Maps the saved graph when it is newer than the one in memory; False when none is usable.

        A file covering more rows than the store commits (`max_rows`) belongs to a store that lost
        its last writes: it is ignored and rebuilt.
        """
        import faiss

        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return self._index is not None
        if mtime == self._loaded_mtime:
            return True
        try:
            index = faiss.read_index(str(self.path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:  # unreadable (a foreign or damaged file): rebuilt by the next writer
            return self._index is not None
        if index.d != self.dim or index.ntotal > max_rows:
            return self._index is not None
        self._loaded_mtime = mtime
        if index.ntotal > self.rows:
            self._index, self._saved_rows, self._mapped = index, int(index.ntotal), True
            self._unreachable = None
        return True

    def extend(self, vectors: np.ndarray, first_row: int) -> None:
        """Adds rows first_row.. (first_row must equal `rows`): blocks for the graph inserts."""
        import faiss

        if first_row != self.rows:
            raise ValueError(f"graph holds rows [0, {self.rows}), cannot add from row {first_row}")
        if self._index is None:
            self._index = faiss.IndexHNSWFlat(self.dim, self.params.m, faiss.METRIC_INNER_PRODUCT)
            self._unreachable = None
            self._index.hnsw.efConstruction = self.params.ef_construction
        elif self._mapped:  # a mapped file is read-only: read a private copy before adding
            # Read from the file, not serialize+deserialize of the map: one copy in memory, not two
            # (1.7 GB each at 1M rows). Another writer may have saved a newer file meanwhile: then
            # the map (its inode still open) is copied as before.
            try:
                copy = faiss.read_index(str(self.path))
            except RuntimeError:  # gone or unreadable since it was mapped
                copy = None
            if copy is None or copy.ntotal != self._index.ntotal:
                copy = faiss.deserialize_index(faiss.serialize_index(self._index))
            self._index = copy
            self._unreachable = None  # the count stays valid for the copy, but never holds the old graph
            self._mapped = False
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def unreachable(self) -> np.ndarray:
        """Rows (sorted) that no row links to in the bottom layer, so that no walk reaches them
        (a small group of rows linked only among themselves is not found this way).

        HNSW prunes neighbour lists as rows arrive, and now and then a row drops out of every
        list it was in; its own vector then finds other posts (1 row in 100,000 real vectors here,
        1 in 16,000 clustered 32-d ones). Search scores these rows exactly beside the walk.
        Counted from faiss's link arrays without copying them (26 ms at 100k rows, on the first
        search of a new graph); recounted for a new graph and after 5 % more rows, so a writer
        adding batch after batch does not pay it each time (rows cut off between two counts are
        missed until the next)."""
        index = self._index
        if index is None or index.ntotal == 0:
            return np.empty(0, np.int64)
        cached = self._unreachable
        if cached is not None and index.ntotal < cached[0] * 1.05:
            return cached[1]
        rows = _unlinked_rows(index)
        self._unreachable = (int(index.ntotal), rows)
        return rows

    def save(self) -> None:
        """Writes the graph to a temporary file and renames it over the saved one (atomic)."""
        import faiss

        if self._index is None or self.unsaved_rows <= 0:
            return
        with atomic_path(self.path) as tmp:  # named <graph>.<random>.<pid>.tmp: remove_stale reads the pid
            faiss.write_index(self._index, str(tmp))
        self._saved_rows = self.rows
        self._loaded_mtime = self.path.stat().st_mtime_ns

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None, share: float, ef_search: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the best k graph rows among `allowed` (a bitmap from `allowed_bitmap`
        over this graph's rows, or None for all), `share` of the graph's rows.

        The breadth is `AnnParams.walk_width`: ef_search (or the default) unfiltered; with a
        filter, wide enough to pass filter_walk_factor × k matching rows (bounded).
        """
        import faiss

        n = self.rows
        ef = self.params.walk_width(k, share, ef_search)
        assert self._index is not None, "the backend searches the graph only once it holds rows"
        params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]  # missing from faiss's stubs
        if allowed is not None:
            assert len(allowed) * 8 >= n, "a bitmap over fewer rows than the graph holds"
            params.sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(allowed))
        scores, rows = self._index.search(
            np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params
        )
        keep = rows[0] >= 0
        return rows[0][keep].astype(np.int64), scores[0][keep]


def _unlinked_rows(index: faiss.Index) -> np.ndarray:
    """Rows of an HNSW `index` (but its entry point) that no bottom-layer neighbour list holds."""
    import faiss

    hnsw: Any = index.hnsw  # type: ignore[attr-defined]  # faiss's stubs know neither the field nor its arrays
    n = int(index.ntotal)
    # Views of faiss's own arrays (also of a memory-mapped graph): no copy of the links.
    links = faiss.rev_swig_ptr(hnsw.neighbors.data(), hnsw.neighbors.size())
    offsets = faiss.rev_swig_ptr(hnsw.offsets.data(), hnsw.offsets.size())
    width = np.arange(hnsw.cum_nb_neighbors(1))  # a row's bottom-layer links come first in its block
    linked = np.zeros(n, dtype=bool)
    for start in range(0, n, 1 << 16):
        block = links[offsets[start : min(n, start + (1 << 16))].astype(np.int64)[:, None] + width]
        linked[block[block >= 0]] = True
    linked[hnsw.entry_point] = True
    return np.flatnonzero(~linked)


def allowed_bitmap(rows: np.ndarray, n: int) -> np.ndarray:
    """faiss's IDSelectorBitmap layout (bit i of byte i // 8, little-endian) of `rows` among [0, n)."""
    mask = np.zeros(n, dtype=bool)
    mask[rows[rows < n]] = True
    return np.packbits(mask, bitorder="little")


def remove_stale(folder: Path, generation: int) -> None:
    """Deletes the graphs of older generations and temporary files of processes that are gone."""
    for path in folder.glob("ann-*.faiss*"):
        name = path.name
        if name.endswith(".tmp"):
            pid = name.rsplit(".", 2)[-2]
            if pid.isdigit() and not _alive(int(pid)):
                path.unlink(missing_ok=True)
        elif name != index_path(folder, generation).name:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
