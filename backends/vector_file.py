"""An append-only file of float32 rows, read through a memory map that is re-opened when the file grows.

Hand-written because no small library offers an appendable memmap shared between processes: numpy's
memmap cannot grow, and row numbers here are owned by SQLite (see embedded.py), which tells readers
how many rows are valid.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VectorFile:
    """Rows of `dim` float32 values at fixed offsets; row r starts at byte r * dim * 4."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self._row_bytes = dim * 4
        self._map: np.ndarray | None = None

    def write_rows(self, first_row: int, vectors: np.ndarray) -> None:
        """Writes rows first_row.. and flushes them to disk before the caller commits their ids.

        Blocks on fsync: a row SQLite points at must be durable, or a crash would leave an id
        whose vector is garbage.
        """
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data.tobytes(), first_row * self._row_bytes)
            os.fsync(fd)
        finally:
            os.close(fd)

    def rows(self, needed: int) -> np.ndarray:
        """A read-only (n, dim) view with n ≥ needed, re-mapping the file when it has grown.

        FileNotFoundError when the file is gone (a compaction replaced it): re-read the row numbers.
        """
        if self._map is None or self._map.shape[0] < needed:
            rows_on_disk = self.path.stat().st_size // self._row_bytes
            if rows_on_disk < needed:
                raise RuntimeError(
                    f"{self.path} holds {rows_on_disk} rows but the index refers to "
                    f"{needed}: the vector file is truncated"
                )
            self._map = (
                np.memmap(self.path, dtype=np.float32, mode="r", shape=(rows_on_disk, self.dim))
                if rows_on_disk
                else np.zeros((0, self.dim), dtype=np.float32)
            )
        return self._map

    def close(self) -> None:
        self._map = None
