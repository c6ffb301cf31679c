"""The Elasticsearch backend: writes and reads go through the alias, so an alias swap is invisible here.

Request bodies come from the pure builders in es_queries.py; this module only sends them and turns
answers into records. Connection failures surface as BackendUnavailableError naming the URL.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from jointspace.backends import es_queries
from jointspace.backends.es_documents import bulk_action, document_from_hit, post_from_source, vector_from_fields
from jointspace.backends.validation import query_vector, split_valid
from jointspace.es_mappings.client import connect, unavailable_as_error
from jointspace.es_mappings.manager import IndexManager, MergeReport
from jointspace.es_mappings.template import VECTOR_FIELD

from jointspace.errors import BackendUnavailableError
from jointspace.records import (
    Document,
    FacetBucket,
    FacetCounts,
    Filters,
    Hit,
    MatchSet,
    RankedPage,
    TrendBucket,
    UpsertResult,
)
from jointspace.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


def _reason(error: object) -> str:
    """`type: reason` from a bulk item's error (a dict from the node, a string from the client)."""
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', error)}"
    return str(error or "unknown error")


def _parts(docs: Sequence[Document], in_flight: int, min_part: int) -> list[Sequence[Document]]:
    """Up to `in_flight` parts of at least `min_part` docs, split by id: writes of one id stay in
    one part, in their order, so the last one given still wins as in a single request."""
    n = max(1, min(in_flight, len(docs) // max(1, min_part)))
    if n == 1:
        return [docs]
    parts: list[list[Document]] = [[] for _ in range(n)]
    for doc in docs:
        parts[zlib.crc32(doc.id.encode()) % n].append(doc)
    return [part for part in parts if part]


class ElasticsearchBackend:
    """SearchBackend on the index behind `alias`. Thread-safe (the client is)."""

    def __init__(
        self, client: Elasticsearch, settings: Settings, model: str, dim: int, alias: str, quantized: bool
    ) -> None:
        self.client = client
        self.settings = settings
        self.model = model
        self.dim = dim
        self.alias = alias
        self._url = settings.es_url or "Elasticsearch"
        # Rescoring re-ranks quantised candidates with the float vectors; a float hnsw index needs none.
        self._rescore = settings.es_rescore_oversample if quantized else 0.0

    @classmethod
    def open(
        cls, settings: Settings, model: str, dim: int, read_only: bool = False, alias: str | None = None
    ) -> ElasticsearchBackend:
        """Connects (BackendUnavailableError within es_connect_timeout_s), checks or creates the index."""
        client = connect(settings)
        manager = IndexManager(client, settings, alias)
        index = manager.open(model, dim, read_only=read_only)
        quantized = str(manager.meta(index).get("index_options", "")).startswith(("int8", "bbq"))
        return cls(client, settings, model, dim, manager.alias, quantized)

    # --- writes --------------------------------------------------------------------------------

    def upsert(
        self,
        docs: Sequence[Document],
        chunk_size: int | None = None,
        max_chunk_bytes: int | None = None,
        max_retries: int | None = None,
        initial_backoff: float | None = None,
    ) -> UpsertResult:
        """Bulk-indexes by post id; per-item failures land in `errors` with Elasticsearch's reason.

        Chunking and 429 retries default to Settings (es_bulk_*). Not refreshed: call refresh() to
        make the writes searchable at once. Raises DimensionError/ModelMismatchError before writing.
        """
        from elasticsearch.helpers import streaming_bulk

        valid, errors = split_valid(docs, self.dim, self.model)
        result = UpsertResult(errors=errors)

        def write(part: Sequence[Document]) -> list[tuple[bool, dict[str, Any]]]:
            # streaming_bulk, not parallel_bulk: only it retries 429s with backoff.
            return list(
                streaming_bulk(
                    self.client,
                    (bulk_action(doc, self.alias) for doc in part),
                    chunk_size=chunk_size or self.settings.es_bulk_chunk_docs,
                    max_chunk_bytes=max_chunk_bytes or self.settings.es_bulk_chunk_bytes,
                    max_retries=self.settings.es_bulk_max_retries if max_retries is None else max_retries,
                    initial_backoff=initial_backoff or self.settings.es_bulk_initial_backoff_s,
                    raise_on_error=False,
                )
            )

        parts = _parts(valid, self.settings.es_bulk_in_flight, self.settings.es_bulk_min_part)
        with unavailable_as_error(self._url):
            if len(parts) > 1:
                with ThreadPoolExecutor(len(parts), thread_name_prefix="es-bulk") as pool:
                    answers = list(pool.map(write, parts))
            else:
                answers = [write(part) for part in parts]
        for ok, item in (pair for answer in answers for pair in answer):
            outcome = next(iter(item.values()))
            if ok:
                result.indexed.append(outcome["_id"])
            else:
                result.errors[outcome["_id"]] = _reason(outcome.get("error"))
        # Each id once, in the order given (as the embedded store answers), whatever part wrote it.
        order = {doc.id: i for i, doc in reversed(list(enumerate(valid)))}
        result.indexed = sorted(set(result.indexed), key=lambda post_id: order.get(post_id, len(order)))
        return result

    def delete(self, post_id: str) -> bool:
        from elasticsearch import NotFoundError

        with unavailable_as_error(self._url):
            try:
                self.client.delete(index=self.alias, id=post_id)
            except NotFoundError:
                return False
        return True

    # Media roots live in the index mapping's `_meta` (beside model and dim), so they travel with the
    # index into snapshots. `_meta` is replaced whole on update and has no compare-and-set, so each
    # change is read back and redone if a concurrent writer's change replaced it.
    def _index_meta(self) -> tuple[str, dict[str, Any]]:
        with unavailable_as_error(self._url):
            mapping = self.client.indices.get_mapping(index=self.alias)
        index, body = next(iter(mapping.items()))
        return index, dict(body["mappings"].get("_meta") or {})

    def _change_media_roots(self, change: Callable[[list[str]], list[str]], attempts: int = 5) -> None:
        for _ in range(attempts):
            index, meta = self._index_meta()
            wanted = sorted(set(change(list(meta.get("media_roots") or []))))
            if wanted == sorted(meta.get("media_roots") or []):
                return
            with unavailable_as_error(self._url):
                self.client.indices.put_mapping(index=index, meta={**meta, "media_roots": wanted})
            if sorted(self._index_meta()[1].get("media_roots") or []) == wanted:
                return

    def add_media_roots(self, paths: Sequence[str]) -> list[str]:
        """Records folders whose pictures may be served; returns those that were new."""
        before = set(self.media_roots())
        added = [p for p in dict.fromkeys(paths) if p not in before]
        if added:
            self._change_media_roots(lambda roots: roots + added)
        return added

    def remove_media_root(self, path: str) -> bool:
        if path not in self.media_roots():
            return False
        self._change_media_roots(lambda roots: [r for r in roots if r != path])
        return True

    def media_roots(self) -> list[str]:
        return sorted(self._index_meta()[1].get("media_roots") or [])

    def refresh(self) -> None:
        with unavailable_as_error(self._url):
            self.client.indices.refresh(index=self.alias)

    def close(self) -> None:
        self.client.close()

    # --- segments --------------------------------------------------------------------------------

    def merge_segments(
        self, max_segments: int = 1, wait: bool = True, progress: Callable[[str], None] | None = None
    ) -> MergeReport:
        """Force-merges the index behind the alias down to `max_segments` (a task on the node; see
        IndexManager.force_merge). Without `wait` the node finishes the merge alone."""
        manager = IndexManager(self.client, self.settings, self.alias)
        with unavailable_as_error(self._url):
            return manager.force_merge(max_segments=max_segments, wait=wait, progress=progress)

    # --- reads -----------------------------------------------------------------------------------

    def get(self, post_id: str, with_vector: bool = True) -> Document | None:
        """The stored post, or None; its vector is empty (size 0) without `with_vector`.

        Read through search (vectors come from doc values), so a write shows after refresh().
        """
        return self.get_many([post_id], with_vector).get(post_id)

    def get_many(self, post_ids: Sequence[str], with_vector: bool = True) -> dict[str, Document]:
        ids = list(dict.fromkeys(post_ids))
        found: dict[str, Document] = {}
        extra: dict[str, Any] = {"docvalue_fields": [VECTOR_FIELD]} if with_vector else {}
        for start in range(0, len(ids), 1_000):  # well under index.max_result_window
            chunk = ids[start : start + 1_000]
            with unavailable_as_error(self._url):
                answer = self.client.search(
                    index=self.alias, query={"ids": {"values": chunk}}, size=len(chunk), track_total_hits=False, **extra
                )
            found |= {hit["_id"]: document_from_hit(hit, self.model) for hit in answer["hits"]["hits"]}
        return found

    def knn(
        self,
        vector: np.ndarray,
        k: int,
        num_candidates: int | None = None,
        filters: Filters | None = None,
        with_vectors: bool = False,
        ranked_top: int | None = None,
    ) -> list[Hit]:
        """Approximate top-k by dot product among documents matching `filters` (filtered inside the
        HNSW search). `num_candidates` defaults to max(k × num_candidates_factor, min_num_candidates).

        On a quantised index (bbq, int8) the float vectors re-score oversample × k quantised candidates, so that
        the order of the top k is right. With `ranked_top` they re-score oversample × ranked_top,
        and never fewer than k (every returned score stays exact): at 100k posts, k = 200 for a
        hybrid window of which a page of 20 is read took 18.4 ms p50 at oversample 3 and 14.4 ms at
        1 (re-scoring the 200), with recall@20 0.998 and 0.993 against exact search."""
        query = query_vector(vector, self.dim)
        if k <= 0:
            return []
        candidates = self.settings.num_candidates(k, num_candidates)
        rescore = es_queries.rescore_oversample(self._rescore, k, ranked_top)
        extra: dict[str, Any] = {"docvalue_fields": [VECTOR_FIELD]} if with_vectors else {}
        with unavailable_as_error(self._url):
            answer = self.client.search(
                index=self.alias,
                knn=es_queries.knn_clause(query, k, candidates, filters, rescore),
                size=k,
                **extra,
            )
        return [
            Hit(
                post=post_from_source(hit["_source"]),
                score=es_queries.dot_from_score(hit["_score"]),
                vector=vector_from_fields(hit.get("fields")) if with_vectors else None,
            )
            for hit in answer["hits"]["hits"]
        ]

    def keyword(self, text: str, k: int, filters: Filters | None = None) -> list[Hit]:
        """BM25 over caption (english + standard analyzers) and hashtags; scores are Elasticsearch's."""
        if not text.strip() or k <= 0:
            return []
        with unavailable_as_error(self._url):
            answer = self.client.search(index=self.alias, query=es_queries.keyword_query(text, filters), size=k)
        return [
            Hit(post=post_from_source(hit["_source"]), score=float(hit["_score"])) for hit in answer["hits"]["hits"]
        ]

    def keyword_among(self, queries: Sequence[tuple[str, Filters | None]], post_ids: Sequence[str]) -> list[list[Hit]]:
        """For each (text, filters), the posts among `post_ids` that match it, best first (BM25).
        Refreshes first (the alert check runs right after the batch's bulk write), then asks all
        the queries in one `_msearch` per 200."""
        results: list[list[Hit]] = [[] for _ in queries]
        ids = list(dict.fromkeys(post_ids))
        asked = [(i, text, filters) for i, (text, filters) in enumerate(queries) if text.strip()]
        if not ids or not asked:
            return results
        self.refresh()
        for start in range(0, len(asked), 200):
            chunk = asked[start : start + 200]
            searches: list[dict[str, Any]] = []
            for _, text, filters in chunk:
                searches += [
                    {"index": self.alias},
                    {"query": es_queries.keyword_among_query(text, filters, ids), "size": len(ids)},
                ]
            with unavailable_as_error(self._url):
                answers = self.client.msearch(searches=searches)["responses"]
            for (index, _, _), answer in zip(chunk, answers, strict=True):
                if "error" in answer:
                    failure = BackendUnavailableError if answer.get("status") in (429, 502, 503, 504) else RuntimeError
                    raise failure(f"keyword check on {self._url} failed: {answer['error']}")
                results[index] = [
                    Hit(post=post_from_source(hit["_source"]), score=float(hit["_score"]))
                    for hit in answer["hits"]["hits"]
                ]
        return results

    def count(self, filters: Filters | None = None) -> int:
        with unavailable_as_error(self._url):
            return int(self.client.count(index=self.alias, query=es_queries.filter_query(filters))["count"])

    def cities(self) -> list[tuple[str, int]]:
        """(lower-cased city, posts), most first (terms aggregation, exact on one shard)."""
        with unavailable_as_error(self._url):
            answer = self.client.search(index=self.alias, size=0, aggs=es_queries.cities_aggregation())
        return [(bucket["key"], int(bucket["doc_count"])) for bucket in answer["aggregations"]["cities"]["buckets"]]

    def mean_vector(self, filters: Filters | None = None) -> np.ndarray | None:
        """The mean (not re-normalised) of the matching vectors, summed while paging through them
        (there is no vector aggregation, and no scripts on the local node); None when nothing matches."""
        total = np.zeros(self.dim, dtype=np.float64)
        n = 0
        for hit in self._page_through(es_queries.filter_query(filters), batch_size=2_000, with_source=False):
            total += vector_from_fields(hit.get("fields"))
            n += 1
        return (total / n).astype(np.float32) if n else None

    def iter_documents(self, batch_size: int = 500) -> Iterator[Document]:
        """Every document with its vector, from one point-in-time snapshot taken at the first batch."""
        for hit in self._page_through({"match_all": {}}, batch_size=batch_size, with_source=True):
            yield document_from_hit(hit, self.model)

    # --- facets, trends and newest-first: one search over the match set ------------------------------

    def _match_body(self, match: MatchSet, vector: np.ndarray) -> dict[str, Any]:
        query = query_vector(vector, self.dim)
        candidates = self.settings.num_candidates(match.depth)
        return es_queries.match_request(query, match.depth, candidates, match.filters, match.min_score, self._rescore)

    def _match_request(self, match: MatchSet) -> tuple[dict[str, Any], dict[str, float] | None]:
        """The search body selecting the match set, and for a keyword set each id's BM25 score.

        A keyword set is fetched first (its top `depth` ids) and then named by an `ids` query:
        aggregating "the best `depth` matches" in one request would need a sampler aggregation,
        whose per-shard cut is not the global top `depth` on several shards.
        """
        if match.vector is not None:
            return self._match_body(match, match.vector), None
        scores: dict[str, float] = {}
        if (match.text or "").strip() and match.depth > 0:
            query = es_queries.keyword_match_query(match.text or "", match.filters, match.exclude)
            with unavailable_as_error(self._url):
                answer = self.client.search(
                    index=self.alias, query=query, size=match.depth, source=False, track_total_hits=False
                )
            scores = {hit["_id"]: float(hit["_score"]) for hit in answer["hits"]["hits"]}
        return {"query": {"ids": {"values": list(scores)}}, "track_total_hits": True}, scores

    def facets(self, match: MatchSet, fields: Sequence[str], size: int) -> FacetCounts:
        """Aggregations over the kNN hits (the same filters inside the kNN, min_score on top)."""
        aggs = es_queries.facet_aggregations(list(fields), size, match.depth)
        body, _ = self._match_request(match)
        with unavailable_as_error(self._url):
            answer = self.client.search(index=self.alias, size=0, aggs=aggs, **body)
        found = answer.get("aggregations", {})
        counts: dict[str, list[FacetBucket]] = {}
        for name in fields:
            buckets = found.get(name, {}).get("buckets", [])
            if name == "month":
                counts[name] = [FacetBucket(str(b["key_as_string"]), int(b["doc_count"])) for b in buckets]
            else:  # terms: sources folded (es_queries.FOLDED_FIELDS)
                counts[name] = [FacetBucket(key, n) for key, n in es_queries.folded_counts(name, buckets, size)]
        return FacetCounts(matching=int(answer["hits"]["total"]["value"]), fields=counts)

    def trends(self, match: MatchSet, by: str, interval: str, size: int) -> list[TrendBucket]:
        """Two searches: the values and periods of the match set, then the same values' posts
        among all that pass the filters (the share's denominator)."""
        aggs = es_queries.trend_aggregations(by, interval, size, match.depth)
        body, _ = self._match_request(match)
        with unavailable_as_error(self._url):
            answer = self.client.search(index=self.alias, size=0, aggs=aggs, **body)
        values = [key for key, _ in es_queries.folded_counts(by, answer["aggregations"]["values"]["buckets"], size)]
        if not values:
            return []
        matched = es_queries.folded_periods(by, answer["aggregations"]["values"])
        totals_aggs = es_queries.trend_aggregations(by, interval, size, match.depth, include=values)
        with unavailable_as_error(self._url):
            totals = self.client.search(
                index=self.alias,
                size=0,
                track_total_hits=False,
                aggs=totals_aggs,
                query=es_queries.values_query(match.filters, by, values),
            )
        total_of = es_queries.folded_periods(by, totals["aggregations"]["values"])
        return [
            TrendBucket(str(value), period, matched[value].get(period, 0), total)
            for value in values
            for period, total in sorted(total_of.get(value, {}).items())
        ]

    def newest(self, match: MatchSet, k: int, offset: int = 0) -> RankedPage:
        """The kNN hits sorted by created_at (then id), paged with from/size; scores kept by track_scores."""
        if k <= 0:
            return RankedPage(hits=[], total=0)
        body, keyword_scores = self._match_request(match)
        with unavailable_as_error(self._url):
            answer = self.client.search(
                index=self.alias, size=k, from_=max(0, offset), sort=es_queries.NEWEST_SORT, track_scores=True, **body
            )
        hits = [
            Hit(
                post=post_from_source(hit["_source"]),
                score=keyword_scores[hit["_id"]]
                if keyword_scores is not None
                else es_queries.dot_from_score(hit["_score"]),
            )
            for hit in answer["hits"]["hits"]
        ]
        return RankedPage(hits=hits, total=int(answer["hits"]["total"]["value"]))

    def _page_through(self, query: dict[str, Any], batch_size: int, with_source: bool) -> Iterator[dict[str, Any]]:
        """Hits (with the vector doc value) of a point in time, paged by search_after on `_shard_doc`."""
        with unavailable_as_error(self._url):
            pit = self.client.open_point_in_time(index=self.alias, keep_alive="2m")["id"]
        try:
            after: list[Any] | None = None
            while True:
                extra: dict[str, Any] = {"search_after": after} if after else {}
                with unavailable_as_error(self._url):
                    answer = self.client.search(
                        pit={"id": pit, "keep_alive": "2m"},
                        query=query,
                        size=batch_size,
                        sort=["_shard_doc"],
                        docvalue_fields=[{"field": VECTOR_FIELD}],  # the object form of the field's name: typed
                        source=with_source,
                        track_total_hits=False,
                        **extra,
                    )
                hits = answer["hits"]["hits"]
                if not hits:
                    return
                pit = answer.get("pit_id", pit)
                yield from hits
                after = hits[-1]["sort"]
        finally:
            try:
                self.client.close_point_in_time(id=pit)
            except Exception:  # the PIT expires by itself; closing early only frees memory
                pass
