"""A graph over a text encoder's vocabulary, so that nearest words cost well under a millisecond.

The exact product over the sentence model's 40,000 × 384 vocabulary reads 61 MB for every query
(about 7 ms on one core): most of an explained search's own time, and again for every describe
call. An HNSW graph (faiss, as the embedded store's index uses) visits a few hundred rows instead.
Its candidates are re-scored by the exact product over those rows, so the words and scores it
returns are the exact ones whenever the true neighbours are among the candidates (tests/encoders
measure that recall against the exact product).

The graph is built once (seconds, in the background of a server) beside the vocabulary's cache
and memory-mapped by every later process; until it exists the exact product answers, so a graph
never delays an answer.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
from jointspace.encoders.vectors import nearest_rows, unit_rows

from jointspace.atomic_write import atomic_path

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

# Wide enough that a k ≤ 20 answer is exact on real vocabularies (tests/encoders/test_word_graph.py);
# the graph walk stays a fraction of a millisecond.
M = 16
EF_CONSTRUCTION = 100
EF_SEARCH = 256
MIN_CANDIDATES = 100
# Rows added per step of a build: a process that exits mid-build waits for one step only.
BUILD_CHUNK = 2048

# A thread still inside faiss while the interpreter tears down crashes the process (SIGABRT
# "terminate called without an active exception", or SIGSEGV), after its work is done: a server
# stopped, or any process exiting, while a build runs in the background. Builds therefore run in
# steps, and at exit the stop flag ends them between two steps; the exit waits for that.
_STOPPING = threading.Event()
_BUILDS = threading.Condition()
_running = 0  # builds under way: from before their first faiss call to their return


class _Stopped(Exception):
    """The process is exiting: the build stops where it is (the next process builds the graph)."""


def _go_on() -> None:
    """Called before each step of a build, and while it waits for another process's build."""
    if _STOPPING.is_set():
        raise _Stopped


@contextmanager
def _registered() -> Iterator[None]:
    """Counts a build for the exit hook, which waits until none is under way."""
    global _running
    with _BUILDS:
        _running += 1
    try:
        yield
    finally:
        with _BUILDS:
            _running -= 1
            _BUILDS.notify_all()


@atexit.register
def _stop_builds() -> None:
    _STOPPING.set()
    with _BUILDS:  # the step under way finishes (a second or so); none starts after it
        _BUILDS.wait_for(lambda: _running == 0, timeout=60)


def _lock(handle: IO[str]) -> None:
    """The build lock between processes, waited for without blocking the exit hook."""
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            _go_on()
            time.sleep(0.1)


class WordGraph:
    """An HNSW graph over the unit rows of one vocabulary matrix, saved at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index: faiss.Index | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._index is not None

    def load(self, rows: int, dim: int) -> bool:
        """Maps the saved graph when one for a matrix of this shape exists."""
        if self._index is not None:
            return True
        if not self.path.is_file():
            return False
        import faiss

        try:
            index = faiss.read_index(str(self.path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:  # damaged or foreign: build() writes a new one
            return False
        if not isinstance(index, faiss.IndexHNSWFlat) or index.ntotal != rows or index.d != dim:
            return False
        index.hnsw.efSearch = EF_SEARCH
        self._index = index
        return True

    def build(self, matrix: np.ndarray) -> None:
        """Builds and saves the graph unless another process has (file lock), then maps it. In
        steps: a process that starts exiting stops it between two (nothing is written)."""
        with _registered():
            try:
                self._build(matrix)
            except _Stopped:  # logged while still counted: the exit hook waits for the line
                log.info("process exiting: vocabulary graph left unbuilt (the next process builds it)")

    def _build(self, matrix: np.ndarray) -> None:
        _go_on()
        import faiss

        rows, dim = matrix.shape
        if self.load(rows, dim):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_suffix(".lock"), "a") as lock:
            _lock(lock)
            try:
                _go_on()
                if self.load(rows, dim):
                    return
                log.info("indexing the %d-word vocabulary for nearest words (once; %s)", rows, self.path.name)
                index = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = EF_CONSTRUCTION
                unit = np.ascontiguousarray(unit_rows(matrix))
                for start in range(0, rows, BUILD_CHUNK):
                    _go_on()
                    index.add(unit[start : start + BUILD_CHUNK])
                _go_on()
                with atomic_path(self.path) as tmp:
                    faiss.write_index(index, str(tmp))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
            _go_on()
            self.load(rows, dim)

    def nearest(
        self, matrix: np.ndarray, vector: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """As `nearest_rows(matrix, vector, k, allowed)`: through the graph when it is ready, the
        exact product otherwise (or when `allowed` leaves rows out: the graph knows no mask)."""
        index = self._index
        if index is None or allowed is not None or k <= 0:
            return nearest_rows(matrix, vector, k, allowed)
        query = unit_rows(np.asarray(vector).reshape(1, -1))
        _, found = index.search(query, min(max(4 * k, MIN_CANDIDATES), len(matrix)))
        candidates = found[0][found[0] >= 0]
        sims = np.asarray(matrix[candidates], dtype=np.float32) @ query[0]
        order = np.argsort(-sims)[:k]
        return [(int(candidates[i]), float(sims[i])) for i in order]
