"""The embedded backend: dot-product search over a memory-mapped vector file, metadata and BM25 in SQLite.

kNN is exact below `ann_min_rows` candidate rows (after filters) and walks an HNSW graph above it
(ann_index.py: a cache over the vector file, saved beside it, never the truth).

One folder holds `index.sqlite` (WAL mode: one writer at a time, any number of readers in other
processes) and `vectors-<generation>.f32`. A write appends vectors, fsyncs them, then commits the
rows that point at them, so a reader never sees an id without its vector. Overwrites and deletes
leave dead rows behind; once they outnumber the live ones the writer compacts into a new
generation file, and readers notice the new generation on their next query.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

import numpy as np
from jointspace.backends.ann_index import AnnIndex, AnnParams, allowed_bitmap, index_path, remove_stale
from jointspace.backends.embedded_sql import (
    SCHEMA,
    SCHEMA_VERSION,
    filter_sql,
    fts_match_expression,
    mentions_any,
    newest_sql,
    period_counts_sql,
    term_counts_sql,
    trend_counts_sql,
)
from jointspace.backends.store_lock import OpenLock
from jointspace.backends.validation import query_vector, split_valid
from jointspace.backends.vector_file import VectorFile

from jointspace.errors import ConfigurationError, ModelMismatchError
from jointspace.records import (
    Document,
    FacetBucket,
    FacetCounts,
    Filters,
    Hit,
    MatchSet,
    Post,
    RankedPage,
    TrendBucket,
    UpsertResult,
    epoch_seconds,
    facet_key,
    utc_now_seconds,
)
from jointspace.sqlite_ids import id_chunks, placeholders

P = ParamSpec("P")
R = TypeVar("R")


COMPACTION_RETRIES = 4


def _retry_after_compaction(method: Callable[P, R]) -> Callable[P, R]:
    """Runs a read again when a compaction removed the vector file between its snapshot and its read.
    A few times: a writer compacting batch after batch on a loaded machine can beat one retry too
    (seen in tests/backends/test_embedded_store.py's two-reader test); each retry takes a new snapshot."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for _ in range(COMPACTION_RETRIES):
            try:
                return method(*args, **kwargs)
            except FileNotFoundError:
                continue
        return method(*args, **kwargs)

    return wrapper


# Filters whose matching rows are kept between queries (until a write), least recently used dropped.
FILTER_CACHE = 16

# Rows scored per numpy call: bounds the memory of a gathered (rows, dim) block to ~100 MB at 384 dims.
SCORE_CHUNK_ROWS = 65_536


class EmbeddedBackend:
    """SearchBackend in one folder. Safe for threads of one process and for several processes."""

    def __init__(
        self,
        folder: Path,
        model: str,
        dim: int,
        compact_min_dead: int = 10_000,
        ann_min_rows: int = 50_000,
        ann: AnnParams = AnnParams(),
        ann_save_rows: int = 20_000,
    ) -> None:
        """`ann_min_rows`: kNN over at least this many candidate rows (after filtering) walks an HNSW
        graph (ann_index.py); fewer are scored exactly. `ann_save_rows`: a writer saves the graph
        once this many rows (or 5 % of it, whichever is more) are not in the saved file."""
        self.folder = folder
        self.model = model
        self.dim = dim
        self._compact_min_dead = compact_min_dead
        self._ann_min_rows = ann_min_rows
        self._ann_params = ann
        self._ann_save_rows = ann_save_rows
        self._ann: AnnIndex | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self._open_lock = OpenLock(folder)  # a restore refuses to swap a store that is open
        self._db = sqlite3.connect(folder / "index.sqlite", isolation_level=None, check_same_thread=False, timeout=60.0)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._vectors: VectorFile | None = None
        self._vectors_generation = -1
        self._own_writes = 0
        self._live_cache: tuple[tuple[int, int, int], np.ndarray] | None = None
        self._filter_cache: OrderedDict[tuple[Filters, tuple[int, int, int]], np.ndarray] = OrderedDict()
        self._bitmap_cache: tuple[np.ndarray, int, np.ndarray] | None = None  # (rows, graph rows, their bitmap)
        self.graph_seconds = 0.0  # spent adding rows to the HNSW graph by this process (bench/scale.py reports it)
        # executescript commits by itself; every statement is IF NOT EXISTS, so racing openers are fine.
        self._db.executescript(SCHEMA)
        with self._write():
            self._check_or_record_model()

    @staticmethod
    def exists(folder: Path) -> bool:
        """Whether `folder` already holds an embedded index."""
        return (folder / "index.sqlite").is_file()

    @staticmethod
    def recorded_model(folder: Path) -> tuple[str, int] | None:
        """(bundle name, dims) the index in `folder` was built with; None without an index."""
        if not EmbeddedBackend.exists(folder):
            return None
        db = sqlite3.connect(f"file:{folder / 'index.sqlite'}?mode=ro", uri=True, timeout=60.0)
        try:
            rows = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('model', 'dim')").fetchall())
        finally:
            db.close()
        return (rows["model"], int(rows["dim"])) if "model" in rows else None

    # --- transactions and shared state -------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: takes the database's single write lock before reading next_row."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._own_writes += 1

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for all the reads of a query (WAL readers never block the writer)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, **values: object) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
            [(key, str(value)) for key, value in values.items()],
        )

    def _check_or_record_model(self) -> None:
        model, dim = self._meta("model"), self._meta("dim")
        if model is None:
            self._set_meta(model=self.model, dim=self.dim, schema=SCHEMA_VERSION, generation=0, next_row=0, dead_rows=0)
            return
        if self._meta("schema") != SCHEMA_VERSION:
            raise ConfigurationError(
                f"{self.folder} holds an embedded index of schema {self._meta('schema')}, "
                f"this version reads schema {SCHEMA_VERSION}: move the folder away and "
                f"ingest again"
            )
        if model != self.model or int(dim or 0) != self.dim:
            raise ModelMismatchError(
                f"the embedded index in {self.folder} was built by model bundle {model!r} ({dim} dims), "
                f"not {self.model!r} ({self.dim} dims): search with JOINTSPACE_MODEL set to the bundle "
                f"{model!r}, or re-embed the stored posts with the new one: `jointspace reindex --bundle "
                f"DIR` (DIR: the folder of bundle {self.model!r})"
            )

    def _vector_file(self) -> VectorFile:
        """The vector file of the generation the current snapshot sees."""
        generation = int(self._meta("generation") or 0)
        if self._vectors is None or self._vectors_generation != generation:
            self._vectors = VectorFile(self.folder / f"vectors-{generation}.f32", self.dim)
            self._vectors_generation = generation
        return self._vectors

    def _data_version(self) -> tuple[int, int, int]:
        """Changes whenever any process commits a write (or a compaction starts a generation)."""
        return (self._db.execute("PRAGMA data_version").fetchone()[0], self._own_writes, self._vectors_generation)

    def _live_rows(self) -> np.ndarray:
        """The rows of every live document, sorted; cached until any process commits a write.

        Without dead rows (nothing overwritten or deleted since the last compaction) that is every
        row below next_row, and SQLite is not asked for them: at 1,000,000 posts fetching them took
        0.5-0.7 s as Python tuples (80 ms as one group_concat string, the path when some are dead)."""
        version = self._data_version()
        if self._live_cache is None or self._live_cache[0] != version:
            next_row = int(self._meta("next_row") or 0)
            live = int(self._db.execute("SELECT count(*) FROM docs").fetchone()[0])
            rows = np.arange(next_row, dtype=np.int64) if live == next_row else _int_list(self._db, "1", [])
            self._live_cache = (version, rows)
        return self._live_cache[1]

    def _filtered_rows(self, filters: Filters | None) -> np.ndarray:
        """Rows matching `filters`, sorted. The last FILTER_CACHE filters' answers are kept until a
        write (a page of results asks the same filter again). Rows only, as one group_concat string
        parsed by numpy: 10 ms for 100,000 matching rows of 1,000,000 where fetching (row, doc_key)
        tuples took 73 ms; doc keys are looked up for the best rows only (`_keys_of`)."""
        if filters is None or filters.is_empty():
            return self._live_rows()
        key = (filters, self._data_version())
        cached = self._filter_cache.get(key)
        if cached is not None:
            self._filter_cache.move_to_end(key)
            return cached
        where, params = filter_sql(filters)
        rows = _int_list(self._db, where, params)
        self._filter_cache[key] = rows
        while len(self._filter_cache) > FILTER_CACHE:
            self._filter_cache.popitem(last=False)
        return rows

    def _keys_of(self, rows: np.ndarray) -> np.ndarray:
        """The doc keys of live `rows` (in their order); call inside the read snapshot that found them."""
        if not len(rows):
            return np.empty(0, dtype=np.int64)
        key_of = dict(
            self._db.execute(
                "SELECT row, doc_key FROM docs WHERE row IN (SELECT value FROM json_each(?))",
                (json.dumps(rows.tolist()),),
            ).fetchall()
        )
        return np.array([key_of[int(row)] for row in rows], dtype=np.int64)

    # --- writes --------------------------------------------------------------------------------

    def upsert(self, docs: Sequence[Document]) -> UpsertResult:
        """Writes the valid documents in one transaction; refused ones are listed with the reason.

        Raises DimensionError / ModelMismatchError before writing anything. Blocks while another
        process writes (SQLite's write lock).
        """
        valid, errors = split_valid(docs, self.dim, self.model)
        if not valid:
            return UpsertResult(indexed=[], errors=errors)
        with self._write() as db:
            vectors = self._vector_file()
            first_row = int(self._meta("next_row") or 0)
            vectors.write_rows(first_row, np.stack([np.asarray(d.vector, dtype=np.float32) for d in valid]))
            dead = int(self._meta("dead_rows") or 0)
            existing = self._existing_ids(db, [d.id for d in valid])
            self._insert_new(db, [(d, first_row + i) for i, d in enumerate(valid) if d.id not in existing])
            for offset, doc in enumerate(valid):
                if doc.id in existing:
                    dead += self._write_document(db, doc, first_row + offset)
            self._set_meta(next_row=first_row + len(valid), dead_rows=dead)
        if dead >= self._compact_min_dead and dead >= self.count():  # count() scans an index: only when needed
            self.compact()
        self.update_graph()
        return UpsertResult(indexed=[d.id for d in valid], errors=errors)

    # --- the HNSW graph (a cache over the vector file; see ann_index.py) --------------------------

    def _graph(self, generation: int) -> AnnIndex:
        if self._ann is None or self._ann.path != index_path(self.folder, generation):
            # Sweeps here too, not only after a save: a killed writer's half-written graph would
            # otherwise stay until the next save, which small batches may never reach.
            remove_stale(self.folder, generation)
            self._ann = AnnIndex(index_path(self.folder, generation), self.dim, self._ann_params)
        return self._ann

    def update_graph(self) -> None:
        """After a commit: adds the committed rows the graph lacks and saves it now and then.

        Nothing below `ann_min_rows` rows. Blocks for the inserts (the first build over an existing
        store takes minutes at a million rows; then each batch adds its own rows only).
        """
        with self._lock:
            with self._read():
                generation, next_row = int(self._meta("generation") or 0), int(self._meta("next_row") or 0)
                vectors = self._vector_file()
            if next_row < self._ann_min_rows:
                return
            graph = self._graph(generation)
            graph.load(next_row)
            if graph.rows < next_row:
                stored = vectors.rows(next_row)  # rows below next_row are committed and never change
                from tqdm import tqdm

                with tqdm(
                    total=next_row - graph.rows, desc="hnsw graph", unit="row", disable=next_row - graph.rows < 100_000
                ) as bar:
                    began = time.perf_counter()
                    while graph.rows < next_row:
                        start = graph.rows
                        end = min(start + SCORE_CHUNK_ROWS, next_row)
                        graph.extend(stored[start:end], start)
                        bar.update(end - start)
                    self.graph_seconds += time.perf_counter() - began
            if graph.unsaved_rows >= max(self._ann_save_rows, graph.rows // 20) or graph.rows == graph.unsaved_rows:
                graph.save()
                remove_stale(self.folder, generation)

    @staticmethod
    def _existing_ids(db: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
        """Those of `ids` already stored (one query for the batch)."""
        return {
            row[0]
            for row in db.execute(
                "SELECT id FROM docs WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
            )
        }

    @staticmethod
    def _insert_new(db: sqlite3.Connection, docs: Sequence[tuple[Document, int]]) -> None:
        """Inserts posts not stored yet, each pointing at its row, with one executemany a table
        (their doc keys follow the largest one, as SQLite would number them one by one).
        Loading 1M posts row by row spent most of its SQL time in per-statement Python calls."""
        if not docs:
            return
        first_key = int(db.execute("SELECT coalesce(max(doc_key), 0) FROM docs").fetchone()[0]) + 1
        posts = [(first_key + i, doc.post, row) for i, (doc, row) in enumerate(docs)]
        tags = [(key, sorted({tag.lower() for tag in post.hashtags})) for key, post, _ in posts]
        db.executemany(
            "INSERT INTO docs(doc_key, id, row, city, source, created_ts, post) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(key, post.id, *_columns(post, row)) for key, post, row in posts],
        )
        db.executemany("INSERT INTO tags(tag, doc_key) VALUES (?, ?)", [(t, key) for key, ts in tags for t in ts])
        db.executemany(
            "INSERT INTO fts(rowid, caption, hashtags) VALUES (?, ?, ?)",
            [(key, post.caption, " ".join(ts)) for (key, post, _), (_, ts) in zip(posts, tags, strict=True)],
        )

    def _write_document(self, db: sqlite3.Connection, doc: Document, row: int) -> int:
        """Inserts or replaces one post pointing at `row`; returns 1 when an older row became dead."""
        post = doc.post
        tags = sorted({tag.lower() for tag in post.hashtags})
        columns = _columns(post, row)
        existing = db.execute("SELECT doc_key FROM docs WHERE id = ?", (post.id,)).fetchone()
        if existing:
            doc_key = existing[0]
            db.execute(
                "UPDATE docs SET row = ?, city = ?, source = ?, created_ts = ?, post = ? WHERE doc_key = ?",
                (*columns, doc_key),
            )
            db.execute("DELETE FROM tags WHERE doc_key = ?", (doc_key,))
            db.execute("DELETE FROM fts WHERE rowid = ?", (doc_key,))
        else:
            doc_key = db.execute(
                "INSERT INTO docs(id, row, city, source, created_ts, post) VALUES (?, ?, ?, ?, ?, ?)",
                (post.id, *columns),
            ).lastrowid
        db.executemany("INSERT INTO tags(tag, doc_key) VALUES (?, ?)", [(tag, doc_key) for tag in tags])
        db.execute(
            "INSERT INTO fts(rowid, caption, hashtags) VALUES (?, ?, ?)", (doc_key, post.caption, " ".join(tags))
        )
        return 1 if existing else 0

    def delete(self, post_id: str) -> bool:
        with self._write() as db:
            existing = db.execute("SELECT doc_key FROM docs WHERE id = ?", (post_id,)).fetchone()
            if not existing:
                return False
            for table, column in (("docs", "doc_key"), ("tags", "doc_key"), ("fts", "rowid")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (existing[0],))
            self._set_meta(dead_rows=int(self._meta("dead_rows") or 0) + 1)
        return True

    def compact(self) -> None:
        """Copies the live rows into a new generation file and drops the old one (blocks writers meanwhile)."""
        with self._write() as db:
            old = self._vector_file()
            generation = self._vectors_generation + 1
            new = VectorFile(self.folder / f"vectors-{generation}.f32", self.dim)
            pairs = db.execute("SELECT row, doc_key FROM docs ORDER BY row").fetchall()
            rows = np.array([p[0] for p in pairs], dtype=np.int64)
            source = old.rows(int(rows.max()) + 1 if len(rows) else 0)
            for start in range(0, len(rows), SCORE_CHUNK_ROWS):
                new.write_rows(start, source[rows[start : start + SCORE_CHUNK_ROWS]])
            db.executemany(
                "UPDATE docs SET row = ? WHERE doc_key = ?",
                [(new_row, doc_key) for new_row, (_, doc_key) in enumerate(pairs)],
            )
            self._set_meta(generation=generation, next_row=len(pairs), dead_rows=0)
        old.close()
        # Readers that mapped the old file keep their mapping (POSIX unlink semantics).
        old.path.unlink(missing_ok=True)

    def add_media_roots(self, paths: Sequence[str]) -> list[str]:
        """Records folders whose pictures may be served; returns those that were new."""
        added_at = utc_now_seconds()
        with self._write() as db:
            return [
                path
                for path in dict.fromkeys(paths)
                if db.execute(
                    "INSERT OR IGNORE INTO media_roots(path, added_at) VALUES (?, ?)", (path, added_at)
                ).rowcount
            ]

    def remove_media_root(self, path: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM media_roots WHERE path = ?", (path,)).rowcount > 0

    def media_roots(self) -> list[str]:
        with self._read() as db:
            return [row[0] for row in db.execute("SELECT path FROM media_roots ORDER BY path")]

    def refresh(self) -> None:
        """Nothing to do: a committed write is visible at once."""

    def close(self) -> None:
        with self._lock:
            if self._ann is not None:
                self._ann.save()  # what this process added, so the next reader scores less exactly
            if self._vectors:
                self._vectors.close()
            self._db.close()
            self._open_lock.release()

    # --- reads -----------------------------------------------------------------------------------

    def _documents(
        self, db: sqlite3.Connection, where: str, params: Sequence[object], with_vector: bool
    ) -> dict[str, Document]:
        rows = db.execute(f"SELECT id, row, post FROM docs WHERE {where}", list(params)).fetchall()
        vectors = self._vector_file().rows(max((r[1] for r in rows), default=-1) + 1) if with_vector else None
        empty = np.empty(0, dtype=np.float32)
        return {
            post_id: Document(
                post=Post.from_json(json.loads(post)),
                model=self.model,
                vector=np.array(vectors[row]) if vectors is not None else empty,
            )
            for post_id, row, post in rows
        }

    def get(self, post_id: str, with_vector: bool = True) -> Document | None:
        """The stored post; its vector is empty (size 0) when `with_vector` is False."""
        return self.get_many([post_id], with_vector).get(post_id)

    @_retry_after_compaction
    def get_many(self, post_ids: Sequence[str], with_vector: bool = True) -> dict[str, Document]:
        found: dict[str, Document] = {}
        ids = list(dict.fromkeys(post_ids))
        with self._read() as db:
            for chunk in id_chunks(ids):
                found |= self._documents(db, f"id IN ({placeholders(chunk)})", chunk, with_vector)
        return found

    @_retry_after_compaction
    def knn(
        self,
        vector: np.ndarray,
        k: int,
        num_candidates: int | None = None,
        filters: Filters | None = None,
        with_vectors: bool = False,
        ranked_top: int | None = None,
    ) -> list[Hit]:
        """Top-k by dot product among the documents matching `filters` (`ranked_top` changes
        nothing: the vectors are float, every score exact).

        Filtering happens first, so k hits come back whenever k documents match. Exact when fewer
        than `ann_min_rows` documents match; otherwise the HNSW graph within the matching rows,
        walked as wide as `AnnParams.walk_width` says (at least its ef_search; `num_candidates`
        only widens it).
        """
        query = query_vector(vector, self.dim)
        if k <= 0:
            return []
        with self._read() as db:
            best_rows, best_scores = self._top(query, k, filters, num_candidates)
            if not len(best_rows):
                return []
            posts = dict(
                db.execute(
                    "SELECT row, post FROM docs WHERE row IN (SELECT value FROM json_each(?))",
                    (json.dumps(best_rows.tolist()),),
                ).fetchall()
            )
            vectors = self._vector_file().rows(int(best_rows.max()) + 1) if with_vectors else None
        return [
            Hit(
                post=Post.from_json(json.loads(posts[int(row)])),
                score=float(score),
                vector=np.array(vectors[int(row)]) if vectors is not None else None,
            )
            for row, score in zip(best_rows, best_scores, strict=True)
        ]

    def _top(
        self, query: np.ndarray, k: int, filters: Filters | None, num_candidates: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the k best matches, best first; call inside a read snapshot.

        Exact below `ann_min_rows` matching rows, else the HNSW graph (`AnnParams.walk_width`)."""
        rows = self._filtered_rows(filters)
        if not len(rows):
            return rows, np.empty(0, dtype=np.float32)
        graph = self._searchable_graph(len(rows))
        if graph is not None:
            rows, scores = self._graph_candidates(graph, query, rows, k, num_candidates)
        else:
            scores = self._scores(query, rows)
        if len(scores) > k:
            keep = np.argpartition(-scores, k)[:k]
            scores, rows = scores[keep], rows[keep]
        order = np.argsort(-scores, kind="stable")
        return rows[order], scores[order]

    def _match_keys(self, match: MatchSet) -> tuple[np.ndarray, np.ndarray]:
        """(doc_keys, scores) of the match set, best first; call inside a read snapshot."""
        if match.vector is None:
            return self._keyword_keys(match)
        rows, scores = self._top(query_vector(match.vector, self.dim), match.depth, match.filters)
        if match.min_score is not None:
            passing = scores >= match.min_score
            rows, scores = rows[passing], scores[passing]
        return self._keys_of(rows), scores

    def _searchable_graph(self, candidates: int) -> AnnIndex | None:
        """The saved (or this writer's) graph when `candidates` rows are enough to walk one; else None."""
        if candidates < self._ann_min_rows:
            return None
        graph = self._graph(int(self._meta("generation") or 0))
        return graph if graph.load(int(self._meta("next_row") or 0)) and graph.rows else None

    def _graph_candidates(
        self, graph: AnnIndex, query: np.ndarray, rows: np.ndarray, k: int, num_candidates: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the graph's best k among `rows` plus every row written since the
        graph was saved (scored exactly). `num_candidates` can widen the walk (`AnnParams.walk_width`)."""
        in_graph = int(np.searchsorted(rows, graph.rows))
        found, graph_scores = (
            graph.search(
                query, k, self._allowed_bitmap(rows, in_graph, graph.rows), in_graph / graph.rows, num_candidates
            )
            if in_graph
            else (np.empty(0, np.int64), np.empty(0, np.float32))
        )
        # Rows no walk reaches are scored exactly, like those written since the graph was saved.
        # Only those among `rows`: live and passing the filter (a dead row has no post to return).
        lost = graph.unreachable() if in_graph else np.empty(0, np.int64)
        if len(lost):
            at = np.minimum(np.searchsorted(rows[:in_graph], lost), in_graph - 1)  # rows are sorted
            lost = np.setdiff1d(lost[rows[at] == lost], found)
        tail = np.concatenate([lost, rows[in_graph:]]) if len(lost) else rows[in_graph:]
        scores = np.concatenate([graph_scores, self._scores(query, tail) if len(tail) else np.empty(0, np.float32)])
        return np.concatenate([found, tail]), scores

    def _allowed_bitmap(self, rows: np.ndarray, in_graph: int, graph_rows: int) -> np.ndarray | None:
        """The graph's selector for `rows` (None when they are all of its rows: no selector), kept
        while `rows` is the cached answer of the last filter asked (1.5-3 ms to build at 1M rows)."""
        if in_graph == graph_rows:  # no dead or filtered-out row
            return None
        cached = self._bitmap_cache
        if cached is not None and cached[0] is rows and cached[1] == graph_rows:
            return cached[2]
        bitmap = allowed_bitmap(rows[:in_graph], graph_rows)
        self._bitmap_cache = (rows, graph_rows, bitmap)
        return bitmap

    def _scores(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """query · vector for each of `rows` (sorted ascending).

        When the rows are a good share of the file, one pass over contiguous slices of the memmap
        beats gathering them (a gather copies every row); a narrow filter gathers only its rows.
        """
        stored = self._vector_file().rows(int(rows[-1]) + 1)
        span = int(rows[-1]) + 1
        if len(rows) * 4 >= span:
            scores: np.ndarray = np.concatenate(
                [
                    _dot(stored[start : min(start + SCORE_CHUNK_ROWS, span)], query)
                    for start in range(0, span, SCORE_CHUNK_ROWS)
                ]
            )
            picked: np.ndarray = scores[rows]  # fancy indexing: numpy's stubs say Any
            return picked
        gathered: np.ndarray = np.concatenate(
            [
                _dot(stored[rows[start : start + SCORE_CHUNK_ROWS]], query)
                for start in range(0, len(rows), SCORE_CHUNK_ROWS)
            ]
        )
        return gathered

    def keyword(self, text: str, k: int, filters: Filters | None = None) -> list[Hit]:
        """BM25 over caption and hashtags (Porter-stemmed). Scores are SQLite's, higher is better:
        comparable in order with Elasticsearch's, not in value."""
        expression = fts_match_expression(text)
        if expression is None or k <= 0:
            return []
        where, params = filter_sql(filters)
        with self._read() as db:
            rows = db.execute(
                f"SELECT docs.post, bm25(fts) AS rank FROM fts JOIN docs ON docs.doc_key = fts.rowid "
                f"WHERE fts MATCH ? AND {where} ORDER BY rank LIMIT ?",
                [expression, *params, k],
            ).fetchall()
        return [Hit(post=Post.from_json(json.loads(post)), score=-float(rank)) for post, rank in rows]

    def keyword_among(self, queries: Sequence[tuple[str, Filters | None]], post_ids: Sequence[str]) -> list[list[Hit]]:
        """For each (text, filters), the posts among `post_ids` that match it, best first (BM25 as in
        `keyword`). For the alert check of a freshly written batch: FTS5 is asked for the batch's
        doc-key ranges only (it seeks a rowid range; an `IN` list would scan every match)."""
        results: list[list[Hit]] = [[] for _ in queries]
        ids = list(dict.fromkeys(post_ids))
        if not ids or not queries:
            return results
        with self._read() as db:
            posts: dict[int, str] = {}
            for chunk in id_chunks(ids):
                posts |= dict(
                    db.execute(f"SELECT doc_key, post FROM docs WHERE id IN ({placeholders(chunk)})", chunk).fetchall()
                )
            spans = _key_spans(sorted(posts))
            for index, (text, filters) in enumerate(queries):
                expression = fts_match_expression(text)
                if expression is None:
                    continue
                where, params = filter_sql(filters)
                found: list[tuple[float, int]] = []
                for low, high in spans:
                    found += [
                        (rank, key)
                        for key, rank in db.execute(
                            f"SELECT fts.rowid, bm25(fts) FROM fts JOIN docs ON docs.doc_key = fts.rowid "
                            f"WHERE fts MATCH ? AND fts.rowid BETWEEN ? AND ? AND {where}",
                            [expression, low, high, *params],
                        )
                        if key in posts
                    ]
                results[index] = [
                    Hit(post=Post.from_json(json.loads(posts[key])), score=-float(rank)) for rank, key in sorted(found)
                ]
        return results

    def count(self, filters: Filters | None = None) -> int:
        where, params = filter_sql(filters)
        with self._read() as db:
            return int(db.execute(f"SELECT count(*) FROM docs WHERE {where}", params).fetchone()[0])

    def cities(self) -> list[tuple[str, int]]:
        """(lower-cased city, posts) by descending count, as Elasticsearch's terms aggregation orders them."""
        with self._read() as db:
            return [
                (city, int(n))
                for city, n in db.execute(
                    "SELECT city, count(*) AS n FROM docs WHERE city IS NOT NULL GROUP BY city ORDER BY n DESC, city"
                )
            ]

    @_retry_after_compaction
    def mean_vector(self, filters: Filters | None = None) -> np.ndarray | None:
        """The arithmetic mean (not re-normalised) of the matching vectors; None when nothing matches."""
        with self._read():
            rows = self._filtered_rows(filters)
            if not len(rows):
                return None
            stored = self._vector_file().rows(int(rows[-1]) + 1)
            total = np.zeros(self.dim, dtype=np.float64)
            for start in range(0, len(rows), SCORE_CHUNK_ROWS):
                total += stored[rows[start : start + SCORE_CHUNK_ROWS]].sum(axis=0, dtype=np.float64)
        return (total / len(rows)).astype(np.float32)

    def iter_documents(self, batch_size: int = 500) -> Iterator[Document]:
        """Every document with its vector, in batches by doc key; sees writes made meanwhile."""
        last_key = 0
        while True:
            keys, batch = self._batch_after(last_key, batch_size)
            if not keys:
                return
            last_key = keys[-1]
            yield from batch.values()

    @_retry_after_compaction
    def _batch_after(self, last_key: int, batch_size: int) -> tuple[list[int], dict[str, Document]]:
        with self._read() as db:
            keys = [
                r[0]
                for r in db.execute(
                    "SELECT doc_key FROM docs WHERE doc_key > ? ORDER BY doc_key LIMIT ?", (last_key, batch_size)
                )
            ]
            return keys, self._documents(db, f"doc_key IN ({','.join('?' * len(keys))})", keys, True) if keys else {}

    # --- facets, trends and newest-first: the match set's keys, then SQL over them -------------------

    def _keyword_keys(self, match: MatchSet) -> tuple[np.ndarray, np.ndarray]:
        """(doc_keys, BM25 scores) of a keyword match set, best first: excluded posts are skipped
        while reading the ranked matches, so `depth` are kept whenever that many qualify."""
        expression = fts_match_expression(match.text or "")
        if expression is None or match.depth <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        where, params = filter_sql(match.filters)
        excluded = frozenset(w.lower() for w in match.exclude)
        rows = self._db.execute(
            f"SELECT docs.doc_key, docs.post, bm25(fts) AS rank FROM fts JOIN docs "
            f"ON docs.doc_key = fts.rowid WHERE fts MATCH ? AND {where} ORDER BY rank"
            + ("" if excluded else " LIMIT ?"),
            [expression, *params, *([] if excluded else [match.depth])],
        )
        keys: list[int] = []
        scores: list[float] = []
        for key, post, rank in rows:
            if excluded and mentions_any(post, excluded):
                continue
            keys.append(int(key))
            scores.append(-float(rank))
            if len(keys) == match.depth:
                break
        return np.array(keys, dtype=np.int64), np.array(scores, dtype=np.float32)

    @_retry_after_compaction
    def facets(self, match: MatchSet, fields: Sequence[str], size: int) -> FacetCounts:
        with self._read() as db:
            keys, _ = self._match_keys(match)
            encoded = json.dumps(keys.tolist())
            counts: dict[str, list[FacetBucket]] = {}
            for name in fields:
                rows = (
                    db.execute(period_counts_sql("month"), (encoded,))
                    if name == "month"
                    else db.execute(term_counts_sql(name), (encoded, size))
                )
                counts[name] = [FacetBucket(facet_key(name, str(value)), int(n)) for value, n in rows]
        return FacetCounts(matching=len(keys), fields=counts)

    @_retry_after_compaction
    def trends(self, match: MatchSet, by: str, interval: str, size: int) -> list[TrendBucket]:
        with self._read() as db:
            keys, _ = self._match_keys(match)
            encoded = json.dumps(keys.tolist())
            values = [facet_key(by, str(v)) for v, _ in db.execute(term_counts_sql(by), (encoded, size))]
            if not values:
                return []
            matched = {
                (facet_key(by, v), p): int(n)
                for v, p, n in db.execute(
                    trend_counts_sql(by, interval, "docs.doc_key IN (SELECT value FROM json_each(?))", len(values)),
                    [encoded, *values],
                )
            }
            where, params = filter_sql(match.filters)
            totals = {
                (facet_key(by, v), p): int(n)
                for v, p, n in db.execute(trend_counts_sql(by, interval, where, len(values)), [*params, *values])
            }
        return [
            TrendBucket(value, period, matched.get((value, period), 0), total)
            for value in values
            for (key, period), total in sorted(totals.items())
            if key == value
        ]

    @_retry_after_compaction
    def newest(self, match: MatchSet, k: int, offset: int = 0) -> RankedPage:
        with self._read() as db:
            keys, scores = self._match_keys(match)
            if k <= 0 or not len(keys):
                return RankedPage(hits=[], total=len(keys))
            score_of = dict(zip(keys.tolist(), scores.tolist(), strict=True))
            rows = db.execute(newest_sql(), (json.dumps(keys.tolist()), k, max(0, offset))).fetchall()
        hits = [Hit(post=Post.from_json(json.loads(post)), score=float(score_of[key])) for key, post in rows]
        return RankedPage(hits=hits, total=len(keys))


def _key_spans(keys: Sequence[int], gap: int = 256) -> list[tuple[int, int]]:
    """Sorted doc keys → (low, high) ranges, a new range wherever two keys lie more than `gap` apart
    (a batch of new posts is one range; posts overwritten in place add a few more)."""
    spans: list[tuple[int, int]] = []
    for key in keys:
        if spans and key - spans[-1][1] <= gap:
            spans[-1] = (spans[-1][0], key)
        else:
            spans.append((key, key))
    return spans


def _int_list(db: sqlite3.Connection, where: str, params: Sequence[object]) -> np.ndarray:
    """The rows of the docs matching `where`, sorted: one group_concat string that numpy parses
    (fetching them as Python tuples costs 7-10 times as much)."""
    text = db.execute(f"SELECT group_concat(row) FROM docs WHERE {where}", list(params)).fetchone()[0]
    rows = np.fromstring(text, dtype=np.int64, sep=",") if text else np.empty(0, dtype=np.int64)
    return np.sort(rows)


def _columns(post: Post, row: int) -> tuple[int, str | None, str | None, float | None, str]:
    """(row, city, source, created_ts, post JSON): the docs columns of a post besides its id and key."""
    return (
        row,
        (post.city or "").strip().lower() or None,
        post.source,
        epoch_seconds(post.created_at) if post.created_at else None,
        json.dumps(post.to_json()),
    )


def _dot(block: np.ndarray, query: np.ndarray) -> np.ndarray:
    """block @ query on one thread (numpy's einsum, not BLAS). OpenBLAS splits a matrix-vector
    product of a few thousand rows over both cores and waits for the second thread: on this shared
    2-core machine (load 8-10) 5,000 gathered rows took 18 ms that way against 0.1-0.2 ms on one
    thread, and 100,000 rows 24 ms against 13 ms. The product is memory-bound; one core suffices."""
    scores: np.ndarray = np.einsum("ij,j->i", block, query)
    return scores
