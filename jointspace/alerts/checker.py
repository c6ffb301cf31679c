"""The alert check of each written batch (a `workers.batch_indexing.BatchListener`).

Per batch: the semantic side of every saved search in one matrix product with the batch's vectors
(`matching.semantic_pairs`), the keyword side of keyword and hybrid searches by the backend on the
batch's ids (`SearchBackend.keyword_among`), then the matches are recorded once per (search, post)
and their webhooks dispatched. Saved searches are parsed and stacked once per store version.

Exactly-once alerts across worker deaths: before the write the batch's ids are written to the
store's journal of checks owed (`will_write`), and cleared after the check. A batch redelivered
after a worker died between the write and the check finds its posts already indexed (the pipeline
skips them as unchanged) but still owed, and checks them then; the store's once-per-pair record
makes a check that did run before harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from jointspace.errors import JointspaceError
from jointspace.protocols import SearchBackend
from jointspace.records import Document, Filters
from jointspace.settings import Settings

from .matching import semantic_pairs
from .records import Match, SavedSearch
from .store import AlertStore
from .webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from jointspace.query.keyword import KeywordQuery

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompiledSearch:
    """A saved search ready to check: its merged filters, keyword side and (semantic/hybrid) threshold."""

    search: SavedSearch
    filters: Filters
    keywords: KeywordQuery | None  # the keyword side of keyword and hybrid searches
    threshold: float | None


@dataclass
class _Compiled:
    version: str
    searches: list[CompiledSearch] = field(default_factory=list)
    vector_rows: list[int] = field(default_factory=list)  # search index of each query-matrix row
    queries: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    webhooks: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.searches


def compile_search(search: SavedSearch, settings: Settings) -> CompiledSearch:
    """Parses the expression and its filters with the query language (raises QueryError)."""
    from jointspace.query.algebra import weighted_terms
    from jointspace.query.keyword import keyword_query
    from jointspace.query.parser import QueryLimits, parse

    limits = QueryLimits.from_settings(settings)
    parsed = parse(search.expression, limits)
    filters = parsed.filters.merge(parse(search.filters, limits).filters) if search.filters else parsed.filters
    keywords = keyword_query(weighted_terms(parsed.expression)) if search.mode != "semantic" else None
    threshold = search.min_score if search.mode != "keyword" else None
    return CompiledSearch(search, filters, keywords, threshold)


class AlertChecker:
    """Checks batches against the saved searches. Thread-safe; one per process is enough."""

    def __init__(
        self,
        store: AlertStore,
        backend: SearchBackend,
        model: str,
        vectorize: Callable[[str], np.ndarray],
        webhooks: WebhookDispatcher,
        settings: Settings,
    ) -> None:
        self.store = store
        self.backend = backend
        self.model = model
        self.vectorize = vectorize  # expression → unit query vector with this process's bundle
        self.webhooks = webhooks
        self.settings = settings
        self._compiled = _Compiled(version="")
        self._lock = threading.Lock()

    # --- BatchListener ------------------------------------------------------------------------
    def will_write(self, post_ids: Sequence[str]) -> None:
        if post_ids and not self.compiled().empty:
            self.store.owe(post_ids)

    def owed(self, post_ids: Sequence[str]) -> set[str]:
        return self.store.owed(post_ids) if post_ids else set()

    def written(self, docs: Sequence[Document], redelivered: bool = False) -> list[Match]:
        """Checks `docs` (just written) against every saved search; returns the matches new to the store."""
        ids = [d.id for d in docs]
        compiled = self.compiled()
        if not docs or compiled.empty:
            self.store.settle(ids)
            return []
        matches = self._matches(compiled, docs)
        new = self.store.record(list(matches.values()), compiled.webhooks)
        self.store.settle(ids)
        deliver = [(m.search_id, m.post_id) for m in new if m.delivery is not None]
        if redelivered:  # a worker died after recording: its deliveries may never have started
            deliver += [p for p in self.store.pending(ids) if p not in set(deliver)]
        if deliver:
            self.webhooks.dispatch(deliver)
        return new

    def forget(self, post_ids: Sequence[str]) -> None:
        self.store.forget_posts(post_ids)

    def close(self) -> None:
        self.webhooks.close()
        self.store.close()

    # --- the check ------------------------------------------------------------------------------
    def _matches(self, compiled: _Compiled, docs: Sequence[Document]) -> dict[tuple[str, str], Match]:
        from jointspace.query.keyword import mentions_any

        posts = [d.post for d in docs]
        vectors = np.stack([np.asarray(d.vector, dtype=np.float32) for d in docs])
        found: dict[tuple[str, str], Match] = {}
        filters = [compiled.searches[i].filters for i in compiled.vector_rows]
        for pair in semantic_pairs(compiled.queries, compiled.thresholds, filters, vectors, posts):
            search = compiled.searches[compiled.vector_rows[pair.search]].search
            found[(search.id, posts[pair.post].id)] = Match(
                search.id, posts[pair.post], pair.score, ("semantic",), pair.score
            )
        wordy = [(i, c) for i, c in enumerate(compiled.searches) if c.keywords is not None]
        if wordy:
            row_of = {search_index: row for row, search_index in enumerate(compiled.vector_rows)}
            index_of = {d.id: j for j, d in enumerate(docs)}
            answers = self.backend.keyword_among(
                [(c.keywords.text, c.filters) for _, c in wordy if c.keywords], [d.id for d in docs]
            )
            for (search_index, entry), hits in zip(wordy, answers, strict=True):
                search = entry.search
                for hit in hits:
                    j = index_of.get(hit.id)
                    if j is None or (entry.keywords and mentions_any(hit, entry.keywords.excluded)):
                        continue
                    key = (search.id, hit.id)
                    if key in found:
                        found[key] = found[key].with_(matched_by=("semantic", "keyword"))
                        continue
                    row = row_of.get(search_index)
                    similarity = float(compiled.queries[row] @ vectors[j]) if row is not None else None
                    score = hit.score if search.mode == "keyword" else similarity
                    found[key] = Match(
                        search.id, posts[j], float(score if score is not None else hit.score), ("keyword",), similarity
                    )
        return found

    # --- compiled saved searches ------------------------------------------------------------
    def compiled(self) -> _Compiled:
        """The saved searches parsed and stacked, rebuilt only when the store's version moved."""
        version = self.store.version()
        with self._lock:
            if self._compiled.version != version:
                self._compiled = self._compile(version)
            return self._compiled

    def _compile(self, version: str) -> _Compiled:
        compiled = _Compiled(version=version)
        searches = self.store.searches()
        if not searches:
            return compiled
        vectors = self.store.vectors(self.model)
        made: dict[str, np.ndarray] = {}
        rows: list[np.ndarray] = []
        thresholds: list[float] = []
        for search in searches:
            try:
                entry = compile_search(search, self.settings)
                vector = None
                if search.mode != "keyword":
                    vector = vectors.get(search.id)
                    if vector is None or vector.shape != (self.backend.dim,):
                        # Saved under another bundle (the index was reindexed since): embed it with ours.
                        vector = made[search.id] = np.asarray(self.vectorize(search.expression), dtype=np.float32)
            except (JointspaceError, KeyError) as exc:
                log.warning(
                    "saved search %s (%r) cannot be checked with model %s: %s",
                    search.id,
                    search.expression,
                    self.model,
                    exc,
                )
                continue
            index = len(compiled.searches)
            compiled.searches.append(entry)
            if search.webhook:
                compiled.webhooks[search.id] = search.webhook
            if vector is not None and entry.threshold is not None:
                compiled.vector_rows.append(index)
                rows.append(vector)
                thresholds.append(entry.threshold)
        if made:
            self.store.set_vectors(self.model, made)
        if rows:
            compiled.queries = np.stack(rows).astype(np.float32)
            compiled.thresholds = np.asarray(thresholds, dtype=np.float32)
        return compiled
