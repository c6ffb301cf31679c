"""A consistent copy of the embedded store while it serves and ingests, and its restore.

The store is `index.sqlite` plus `vectors-<generation>.f32` (see embedded.py). A writer appends
vectors and fsyncs them before it commits the rows that point at them, never rewrites a row below
`next_row`, and a compaction writes a new generation file and unlinks the old one only after its
commit. So one SQLite read snapshot names a generation and a row count whose vector bytes are
final: the copy opens that vector file inside the snapshot (an unlink afterwards does not affect
an open file), copies the database with SQLite's backup API from the same snapshot, then copies
exactly those rows.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

INDEX = "index.sqlite"
COPY_CHUNK = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EmbeddedCopy:
    model: str
    dim: int
    posts: int
    generation: int
    rows: int
    vector_file: str


def _meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM meta").fetchall())


def copy_store(folder: Path, target: Path, attempts: int = 5) -> EmbeddedCopy:
    """Copies the store in `folder` into the empty folder `target`, consistently, without stopping
    its writers (they wait at most for the database copy, a page-by-page read). Raises
    FileNotFoundError when `folder` holds no store."""
    if not (folder / INDEX).is_file():
        raise FileNotFoundError(folder / INDEX)
    target.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        copied = _copy_once(folder, target)
        if copied is not None:
            return copied
        time.sleep(0.1)  # a compaction replaced the vector file under the snapshot: take a new one
    raise RuntimeError(f"{folder} kept compacting during {attempts} backup attempts; try again")


def _copy_once(folder: Path, target: Path) -> EmbeddedCopy | None:
    source = sqlite3.connect(folder / INDEX, isolation_level=None, timeout=60.0)
    try:
        source.execute("BEGIN")  # deferred: the first read below fixes the snapshot
        meta = _meta(source)
        generation, rows, dim = int(meta.get("generation", 0)), int(meta.get("next_row", 0)), int(meta["dim"])
        vector_path = folder / f"vectors-{generation}.f32"
        try:
            vectors = vector_path.open("rb") if rows else None
        except FileNotFoundError:
            return None
        try:
            (target / INDEX).unlink(missing_ok=True)
            destination = sqlite3.connect(target / INDEX)
            try:
                # The source connection is inside its read transaction, so the backup reads that
                # same snapshot (in one step: pages=-1), however much is written meanwhile.
                source.backup(destination)
                copied_meta = _meta(destination)
                posts = int(destination.execute("SELECT count(*) FROM docs").fetchone()[0])
                destination.execute("PRAGMA journal_mode=WAL")
            finally:
                destination.close()
            if (int(copied_meta.get("generation", 0)), int(copied_meta.get("next_row", 0))) != (generation, rows):
                return None
            out_path = target / vector_path.name
            with out_path.open("wb") as out:
                remaining = rows * dim * 4
                while remaining and vectors is not None:
                    chunk = vectors.read(min(COPY_CHUNK, remaining))
                    if not chunk:
                        raise RuntimeError(f"{vector_path} is shorter than the {rows} rows its index names")
                    out.write(chunk)
                    remaining -= len(chunk)
                out.flush()
                os.fsync(out.fileno())
        finally:
            if vectors is not None:
                vectors.close()
    finally:
        if source.in_transaction:
            source.execute("COMMIT")
        source.close()
    return EmbeddedCopy(
        model=copied_meta["model"], dim=dim, posts=posts, generation=generation, rows=rows, vector_file=out_path.name
    )


def stage_store(copy: Path, folder: Path) -> Path:
    """Copies the backed-up store in `copy` beside `folder` (the backup itself is never opened for
    writing); returns the staging folder, to be checked and then swapped in with `swap_in`."""
    staging = folder.with_name(f"{folder.name}.restore")
    shutil.rmtree(staging, ignore_errors=True)  # left by a restore that died: incomplete
    shutil.copytree(copy, staging)
    return staging


def swap_in(staging: Path, folder: Path) -> Path | None:
    """Puts `staging` in place of `folder` by two renames. Returns where the store that was there
    went (kept for a rollback), or None."""
    retired = None
    if folder.exists():
        retired = folder.with_name(f"{folder.name}.before-restore-{time.strftime('%Y%m%d-%H%M%S')}")
        folder.rename(retired)
    staging.rename(folder)
    return retired
