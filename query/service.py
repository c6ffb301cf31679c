"""The search service: expression → parsed query → vector → plan → backend calls → hits + explanation.

`SearchService` is what the CLI and the API call; its public methods are a stable contract.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from jointspace.choices import SEARCH_MODES, SearchMode
from jointspace.errors import DimensionError, QueryError
from jointspace.protocols import SearchBackend, TextEncoder
from jointspace.records import FacetCounts, Filters, Hit, MatchSet
from jointspace.settings import Settings

from .algebra import WeightedTerm, combine, contributions, unit, weighted_terms
from .collapse import Collapsed, collapse
from .cutoff import AUTO, AUTO_POOL, auto_min_score, no_cutoff_note, parse_min_score
from .filters import filters_to_json, time_range_checked
from .fusion import reciprocal_rank_fusion
from .keyword import KeywordQuery, keyword_query, mentions_any
from .matching import Sort, TrendResult, check_sort, check_trend, facet_fields, keyword_match_set, match_json, match_set
from .parser import ParsedQuery, QueryLimits, parse
from .planner import PagePlan, plan_page
from .resolve import resolve
from .syntax import Term
from .vocabulary import NearestWords, VocabularyNotReady

Mode = SearchMode
MODES: tuple[str, ...] = SEARCH_MODES
# The key an uploaded photo's vector takes among the terms of `search_vector`.
PHOTO_KEY = ("photo", "uploaded photo")


@dataclass(slots=True)
class SearchResult:
    """One page of hits, best first, and how they were found.

    `total` counts the ranked results found through this page's depth (after `min_score` and
    collapsing), or with `sort="newest"` the posts of the match set; `has_more` says whether a
    next page would hold anything. `facets`: the counts asked for, over the match set.
    """

    hits: list[Hit]
    explain: dict[str, Any]
    page: int
    k: int
    total: int
    has_more: bool
    facets: FacetCounts | None = None
    sort: str = "relevance"


class _Ranks:
    """Each hit's 1-based rank in each list it came from ({"semantic": 3, "keyword": 1}). Built from
    whole id lists at C speed; the per-hit dicts are made only for the page the explanation shows
    (a hybrid search ranks hundreds of ids a list, a page shows tens)."""

    __slots__ = ("lists",)

    def __init__(self, lists: dict[str, dict[str, int]] | None = None) -> None:
        self.lists = lists or {}

    @classmethod
    def of(cls, name: str, ids: Sequence[str], first: int = 1) -> _Ranks:
        return cls({name: dict(zip(ids, range(first, first + len(ids)), strict=True))})

    def merged(self, other: _Ranks) -> _Ranks:
        return _Ranks({**self.lists, **other.lists})

    def get(self, post_id: str) -> dict[str, int]:
        """{list name: rank} for the lists holding `post_id` (empty when none does)."""
        return {name: ranks[post_id] for name, ranks in self.lists.items() if post_id in ranks}


@dataclass(slots=True)
class _Ranked:
    hits: list[Hit]
    exhausted: bool
    ranks: _Ranks = field(default_factory=_Ranks)
    similarity: dict[str, float] = field(default_factory=dict)  # kNN scores: dot products with the query


@dataclass(slots=True)
class _Fused:
    """One hybrid search's two lists fused, kept while `_fill` asks for longer prefixes of it: the
    backend is asked once per window, and hits are made (with the vectors collapsing attached to
    them) only for the prefix asked for, not for every fused id."""

    ids: list[tuple[str, float]]  # fused (id, score), best first
    by_id: dict[str, Hit]
    exhausted: bool  # both lists hold everything that matched
    ranks: _Ranks
    similarity: dict[str, float]
    hits: list[Hit] = field(default_factory=list)  # the prefix made so far (shared, grown in place)


class _Clock:
    """Milliseconds spent per stage; the backend's share is kept apart so overhead can be measured."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._start = time.perf_counter()

    def add(self, stage: str, started: float) -> None:
        self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - started) * 1000.0

    def backend(self, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.add("backend", started)

    def to_json(self) -> dict[str, float]:
        total = (time.perf_counter() - self._start) * 1000.0
        return {**{k: round(v, 3) for k, v in self.ms.items()}, "total": round(total, 3)}


class SearchService:
    """Searches one backend with one text encoder. Thread-safe as far as the backend is.

    Every method raises `QueryError` (with a character position where there is one) for a query
    a person must change, and lets backend errors (`BackendUnavailableError`, ...) through.
    """

    def __init__(
        self,
        backend: SearchBackend,
        text_encoder: TextEncoder,
        settings: Settings,
        nearest: NearestWords | None = None,
    ) -> None:
        if text_encoder.dim != backend.dim:
            raise DimensionError(
                f"the text encoder makes {text_encoder.dim}-d vectors but the index holds "
                f"{backend.dim}-d ones: use the model bundle that built the index"
            )
        self.backend = backend
        self.text = text_encoder
        self.settings = settings
        self.limits = QueryLimits.from_settings(self.settings)
        # Nearest words: a server passes one prepared in the background (answers go on without
        # them until ready, raising VocabularyNotReady); a one-off caller simply waits.
        self.nearest = nearest or NearestWords(text_encoder, blocking=True)
        # Hybrid search's keyword list runs here beside the kNN. Threads start on first use, as
        # many as hybrid searches at once, up to the API's own worker threads (40).
        self._side = ThreadPoolExecutor(max_workers=40, thread_name_prefix="keyword-list")

    # -- public contract ---------------------------------------------------------------------------
    def parse(self, expression: str) -> ParsedQuery:
        """The parsed expression (raises QueryError with the position of the mistake)."""
        return parse(expression, self.limits)

    def query_vector(self, expression: str) -> np.ndarray:
        """The unit query vector of an expression (its filters are ignored)."""
        parsed = self.parse(expression)
        terms = weighted_terms(parsed.expression)
        vectors = resolve([t.term for t in terms], self.text, self.backend, expression)
        return combine(terms, vectors, expression)

    def search(
        self,
        expression: str,
        filters: Filters | None = None,
        mode: Mode = "semantic",
        k: int | None = None,
        page: int = 1,
        min_score: float | str | None = None,
        collapse: float | bool | None = None,
        include_vectors: bool = False,
        facets: str | Sequence[str] | None = None,
        sort: Sort | str = "relevance",
    ) -> SearchResult:
        """Page `page` (1-based) of `k` hits (default Settings.default_k) for `expression`.

        `filters` add to the expression's inline filters. `mode`: "semantic" (kNN, score = dot
        product of unit vectors), "keyword" (BM25 on captions and hashtags; minus-terms exclude
        posts that mention them; image terms are ignored), "hybrid" (both lists fused by
        reciprocal rank fusion; score = fused score). `min_score` drops kNN hits whose dot product
        is below it (semantic and the semantic side of hybrid); "auto" sets it per query from the
        scores of its top candidates (query.cutoff). `collapse`: None uses
        Settings.near_duplicate_threshold, False switches it off, a number is the threshold.
        Hit vectors are returned only when `include_vectors`.

        `facets` ("city,hashtags", or a list of records.FACET_FIELDS) counts those fields over the
        match set (query/matching.py: the kNN hits above `min_score`, or the `facet_depth`
        nearest). `sort="newest"` pages through the match set newest first instead of by
        relevance (no near-duplicate collapsing: pages stay a fixed partition of the set).
        In keyword mode the match set is the facet_depth best BM25 matches (minus excluded words).
        """
        clock = _Clock()
        started = time.perf_counter()
        parsed = self.parse(expression)
        clock.add("parse", started)
        return self._run(
            parsed, None, 1.0, filters, mode, k, page, min_score, collapse, include_vectors, clock, facets, sort
        )

    def search_vector(
        self,
        vector: np.ndarray,
        expression: str = "",
        weight: float = 1.0,
        filters: Filters | None = None,
        mode: Mode = "semantic",
        k: int | None = None,
        page: int = 1,
        min_score: float | str | None = None,
        collapse: float | bool | None = None,
        include_vectors: bool = False,
        facets: str | Sequence[str] | None = None,
        sort: Sort | str = "relevance",
    ) -> SearchResult:
        """Like `search`, with a vector (an uploaded photo's) as one more term of weight `weight`:
        the query is weight·unit(vector) + the expression's terms. In keyword mode the vector
        takes no part and the expression must hold words."""
        clock = _Clock()
        started = time.perf_counter()
        parsed = self.parse(expression)
        photo = np.asarray(vector, dtype=np.float32).reshape(-1)
        if photo.shape != (self.backend.dim,):
            raise DimensionError(f"the photo's vector has {photo.size} dimensions; the index holds {self.backend.dim}")
        if not np.all(np.isfinite(photo)):
            raise QueryError("the photo's vector holds non-finite numbers")
        if not (np.isfinite(weight) and abs(weight) <= self.limits.max_weight):
            raise QueryError(f"the photo's weight must be a number within ±{self.limits.max_weight:g}")
        clock.add("parse", started)
        return self._run(
            parsed,
            photo,
            float(weight),
            filters,
            mode,
            k,
            page,
            min_score,
            collapse,
            include_vectors,
            clock,
            facets,
            sort,
        )

    def describe_post(self, post_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The `k` vocabulary words nearest to an indexed post's image vector, with similarities.
        Raises VocabularyNotReady while a server still prepares the vocabulary."""
        doc = self.backend.get(post_id, with_vector=True)
        if doc is None or doc.vector is None or np.asarray(doc.vector).size == 0:
            raise QueryError(f"no indexed image has the id '{post_id}'")
        return [(w, float(s)) for w, s in self.nearest.nearest(unit(doc.vector), k)]

    def describe_city(self, city: str, k: int = 10) -> list[tuple[str, float]]:
        """The `k` words nearest to the mean image vector of a city's posts, with similarities."""
        # A blank name would be no filter at all, and the mean of every post.
        mean = self.backend.mean_vector(Filters(cities=(city,))) if city.strip() else None
        if mean is None or not np.any(mean):
            raise QueryError(f"no indexed posts in the city '{city.strip().lower()}'")
        return [(w, float(s)) for w, s in self.nearest.nearest(unit(mean), k)]

    # -- the pipeline ---------------------------------------------------------------------------
    def _run(
        self,
        parsed: ParsedQuery,
        photo: np.ndarray | None,
        photo_weight: float,
        filters: Filters | None,
        mode: str,
        k: int | None,
        page: int,
        min_score: float | str | None,
        collapse_to: float | bool | None,
        include_vectors: bool,
        clock: _Clock,
        facets: str | Sequence[str] | None = None,
        sort: Sort | str = "relevance",
    ) -> SearchResult:
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        fields = facet_fields(facets)
        sort = check_sort(sort)
        plan = plan_page(self.settings.default_k if k is None else k, page, self.settings)
        try:
            min_score = parse_min_score(min_score)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
        threshold = self._threshold(collapse_to)
        merged = time_range_checked(parsed.filters.merge(filters) if filters is not None else parsed.filters)
        terms = weighted_terms(parsed.expression)
        text = parsed.text

        started = time.perf_counter()
        query: np.ndarray | None = None
        vectors: dict[tuple[str, str], np.ndarray] = {}
        if mode != "keyword":
            vectors = resolve([t.term for t in terms], self.text, self.backend, text)
            if photo is not None:
                vectors[PHOTO_KEY] = photo
                terms = [WeightedTerm(_photo_term(), photo_weight), *terms]
            query = combine(terms, vectors, text)
        keywords = keyword_query(terms)
        asked_min_score = min_score
        auto_threshold: float | None = None
        auto_note: str | None = None
        # From here on a number (or no cut-off), the same for every page; "auto" is the only text
        # that parse_min_score lets through.
        cut: float | None
        if isinstance(min_score, str):
            cut, auto_threshold, auto_note = self._auto_min_score(query, merged, plan.num_candidates, clock)
        else:
            cut = min_score
        keyword_note = None
        if mode == "keyword" and keywords.is_empty():
            raise QueryError(
                "keyword search needs at least one word or phrase with a positive weight",
                0 if text else None,
                text or None,
            )
        if mode == "hybrid" and keywords.is_empty():
            # Images and minus-words only (`[img:42]-dog`): nothing for BM25 to look for, so the
            # semantic side is the whole answer; the explanation says so.
            keyword_note = (
                "hybrid search ran its semantic side only: the query has no word or phrase "
                "with a positive weight for the keyword side"
            )
        clock.add("encode", started)

        # Hybrid counts and orders its semantic side; keyword search its own best matches.
        match = (
            match_set(query, merged, cut, self.settings)
            if query is not None
            else keyword_match_set(keywords, merged, self.settings)
        )
        if sort == "newest":
            return self._newest(
                parsed,
                merged,
                mode,
                plan,
                terms,
                vectors,
                match,
                keywords,
                fields,
                include_vectors,
                clock,
                asked_min_score,
                auto_threshold,
                auto_note,
            )
        if mode == "semantic" or keyword_note is not None:
            assert query is not None
            # The vectors come with the hits when collapsing or the caller needs them: one request.
            vectors_too = threshold is not None or include_vectors
            ranked = self._fill(
                plan, threshold, clock, lambda n: self._semantic(query, n, plan, merged, cut, clock, vectors_too)
            )
        elif mode == "keyword":
            ranked = self._fill(plan, threshold, clock, lambda n: self._keyword(keywords, n, merged, clock))
        else:
            assert query is not None
            fusions: dict[int, _Fused] = {}
            ranked = self._fill(
                plan,
                threshold,
                clock,
                lambda n: self._hybrid(query, keywords, n, plan, merged, cut, clock, fusions),
            )
        kept, dropped = ranked
        page_hits = kept.hits[plan.start : plan.depth]
        counts = self._facets(match, fields, clock)
        explain = self._explain(
            parsed,
            merged,
            mode,
            plan,
            terms,
            vectors,
            query,
            keywords,
            page_hits,
            kept,
            dropped,
            cut,
            threshold,
            clock,
        )
        explain["sort"] = "relevance"
        self._explain_min_score(explain, asked_min_score, auto_threshold, auto_note)
        if keyword_note is not None:
            explain["keyword_note"] = keyword_note
        if counts is not None and match is not None:
            explain["match"] = match_json(match, counts.matching)
        page_hits = self._vectors_if_asked(page_hits, include_vectors, clock)
        has_more = len(kept.hits) > plan.depth or not kept.exhausted
        return SearchResult(page_hits, explain, plan.page, plan.k, len(kept.hits), has_more, counts)

    def _newest(
        self,
        parsed: ParsedQuery,
        filters: Filters,
        mode: str,
        plan: PagePlan,
        terms: Sequence[WeightedTerm],
        vectors: dict[tuple[str, str], np.ndarray],
        match: MatchSet,
        keywords: KeywordQuery,
        fields: tuple[str, ...],
        include_vectors: bool,
        clock: _Clock,
        asked_min_score: float | str | None = None,
        auto_threshold: float | None = None,
        auto_note: str | None = None,
    ) -> SearchResult:
        """A page of the match set, newest first: the backend sorts the whole set and pages it,
        so every post of the set is on exactly one page."""
        page = clock.backend(lambda: self.backend.newest(match, plan.k, plan.start))
        counts = self._facets(match, fields, clock)
        ranked = _Ranked(
            page.hits,
            True,
            _Ranks.of("newest", [h.id for h in page.hits], plan.start + 1),
            {h.id: h.score for h in page.hits},
        )
        explain = self._explain(
            parsed,
            filters,
            mode,
            plan,
            terms,
            vectors,
            match.vector,
            keywords,
            page.hits,
            ranked,
            [],
            match.min_score,
            None,
            clock,
        )
        explain["sort"] = "newest"
        explain["match"] = match_json(match, page.total)
        self._explain_min_score(explain, asked_min_score, auto_threshold, auto_note)
        hits = self._vectors_if_asked(page.hits, include_vectors, clock)
        return SearchResult(
            hits, explain, plan.page, plan.k, page.total, plan.start + len(hits) < page.total, counts, "newest"
        )

    def _auto_min_score(
        self, query: np.ndarray | None, filters: Filters, candidates: int, clock: _Clock
    ) -> tuple[float | None, float | None, str | None]:
        """`min_score=auto` as a number: the threshold (query.cutoff) read from the scores of the
        query's top AUTO_POOL kNN hits with the search's filters. Returns (min_score to apply, the
        threshold computed, why there is none); no cut-off without a query vector or when the pool
        cannot tell."""
        if query is None:
            return None, None, "no cut-off: the query has no vector to score pictures by"
        pool = clock.backend(lambda: self.backend.knn(query, AUTO_POOL, max(candidates, AUTO_POOL), filters))
        scores = [h.score for h in pool]
        threshold = auto_min_score(scores)
        if np.isfinite(threshold):
            return threshold, threshold, None
        return None, threshold, no_cutoff_note(scores)

    @staticmethod
    def _explain_min_score(
        explain: dict[str, Any], asked: float | str | None, threshold: float | None, note: str | None
    ) -> None:
        if asked == AUTO:  # what was asked, and the threshold it became (null: no cut-off, and why)
            explain["min_score"] = AUTO
            explain["min_score_auto"] = threshold if threshold is not None and np.isfinite(threshold) else None
            if explain["min_score_auto"] is None and note:
                explain["min_score_note"] = note

    def _facets(self, match: MatchSet | None, fields: tuple[str, ...], clock: _Clock) -> FacetCounts | None:
        if not fields or match is None:
            return None
        counts: FacetCounts = clock.backend(lambda: self.backend.facets(match, fields, self.settings.facet_size))
        return counts

    def _vectors_if_asked(self, hits: list[Hit], include_vectors: bool, clock: _Clock) -> list[Hit]:
        if include_vectors:
            self._attach_vectors(hits, clock)
            return hits
        return [h if h.vector is None else replace(h, vector=None) for h in hits]

    def trends(
        self,
        expression: str,
        by: str = "city",
        interval: str = "month",
        filters: Filters | None = None,
        min_score: float | str | None = None,
    ) -> TrendResult:
        """Per value of `by` (records.TREND_KEYS; the Settings.trend_max_series most frequent in the
        match set) and per `interval` (day, month, year; UTC): the posts of the match set and all
        posts passing the filters, whose ratio is the share. Raises QueryError like `search`."""
        check_trend(by, interval)
        try:
            min_score = parse_min_score(min_score)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
        clock = _Clock()
        started = time.perf_counter()
        parsed = self.parse(expression)
        clock.add("parse", started)
        started = time.perf_counter()
        terms = weighted_terms(parsed.expression)
        query = combine(terms, resolve([t.term for t in terms], self.text, self.backend, parsed.text), parsed.text)
        clock.add("encode", started)
        merged = time_range_checked(parsed.filters.merge(filters) if filters is not None else parsed.filters)
        cut: float | None
        if isinstance(min_score, str):  # "auto", the only text parse_min_score lets through
            cut, _, _ = self._auto_min_score(query, merged, self.settings.min_num_candidates, clock)
        else:
            cut = min_score
        match = match_set(query, merged, cut, self.settings)
        buckets = clock.backend(lambda: self.backend.trends(match, by, interval, self.settings.trend_max_series))
        matching = clock.backend(lambda: self.backend.facets(match, (), 1)).matching
        explain = {
            "expression": parsed.text,
            "parsed": parsed.to_text(),
            "filters": filters_to_json(merged),
            "match": match_json(match, matching),
            "timings_ms": clock.to_json(),
        }
        return TrendResult(expression, by, interval, matching, match, buckets, explain)

    def _threshold(self, collapse_to: float | bool | None) -> float | None:
        if collapse_to is False:
            return None
        if collapse_to is None or collapse_to is True:
            value = self.settings.near_duplicate_threshold
        else:
            value = float(collapse_to)
        if not np.isfinite(value):
            raise QueryError("the near-duplicate threshold must be a finite number")
        # A threshold above 1 can never be reached by unit vectors: that is how it is switched off.
        return value if value <= 1.0 else None

    def _fill(
        self, plan: PagePlan, threshold: float | None, clock: _Clock, produce: Callable[[int], _Ranked]
    ) -> tuple[_Ranked, list[Collapsed]]:
        """Ranks `plan.depth` results; while collapsing or exclusion removed some and more exist,
        asks for twice as many (up to `plan.cap`) so a page is full whenever enough results exist."""
        fetch = plan.depth
        while True:
            ranked = produce(fetch)
            kept, dropped, used = self._collapse_prefix(ranked.hits, plan.depth, threshold, clock)
            exhausted = ranked.exhausted and used == len(ranked.hits)
            result = _Ranked(kept, exhausted, ranked.ranks, ranked.similarity)
            if len(kept) >= plan.depth or ranked.exhausted or fetch >= plan.cap:
                return result, dropped
            fetch = min(plan.cap, fetch * 2)

    def _collapse_prefix(
        self, hits: list[Hit], depth: int, threshold: float | None, clock: _Clock
    ) -> tuple[list[Hit], list[Collapsed], int]:
        """Collapses only as long a prefix of `hits` as it takes to keep `depth` of them (greedy
        collapsing of a prefix is the prefix of collapsing the whole), so a hybrid list of hundreds
        costs vectors for about a page. Returns the kept hits, the dropped ones and the prefix length."""
        if threshold is None:
            return hits, [], len(hits)
        used = min(len(hits), depth)
        while True:
            self._attach_vectors(hits, clock, stop=used)
            started = time.perf_counter()
            kept, dropped = collapse(hits[:used], threshold)
            clock.add("collapse", started)
            if len(kept) >= depth or used == len(hits):
                return kept, dropped, used
            used = min(len(hits), used + 2 * (depth - len(kept)))

    def _semantic(
        self,
        query: np.ndarray,
        n: int,
        plan: PagePlan,
        filters: Filters,
        min_score: float | None,
        clock: _Clock,
        with_vectors: bool = False,
        ranked_top: int | None = None,
    ) -> _Ranked:
        candidates = max(plan.num_candidates, n)
        hits = clock.backend(lambda: self.backend.knn(query, n, candidates, filters, with_vectors, ranked_top))
        exhausted = len(hits) < n
        if min_score is not None:
            passing = [h for h in hits if h.score >= min_score]
            exhausted = exhausted or len(passing) < len(hits)
            hits = passing
        ids = [h.post.id for h in hits]
        return _Ranked(
            hits, exhausted, _Ranks.of("semantic", ids), dict(zip(ids, [h.score for h in hits], strict=True))
        )

    def _keyword(self, keywords: KeywordQuery, n: int, filters: Filters, clock: _Clock) -> _Ranked:
        hits = clock.backend(lambda: self.backend.keyword(keywords.text, n, filters))
        exhausted = len(hits) < n
        if keywords.excluded:
            hits = [h for h in hits if not mentions_any(h, keywords.excluded)]
        return _Ranked(hits, exhausted, _Ranks.of("keyword", [h.post.id for h in hits]))

    def _hybrid(
        self,
        query: np.ndarray,
        keywords: KeywordQuery,
        n: int,
        plan: PagePlan,
        filters: Filters,
        min_score: float | None,
        clock: _Clock,
        fusions: dict[int, _Fused],
    ) -> _Ranked:
        """The first `n` fused hits. Both lists are ranked to the same page-independent window, so
        every page fuses the same lists; `fusions` keeps the fusion of each window across the
        calls `_fill` makes for one query."""
        window = max(n, plan.window)
        fused = fusions.get(window)
        if fused is None:
            # The two lists are independent: the keyword one is asked for on another thread while
            # this one waits for the kNN (two requests in flight instead of one after the other).
            # The backend stage counts the wall time of the pair.
            started = time.perf_counter()
            before = clock.ms.get("backend", 0.0)
            keyword_list = self._side.submit(self._keyword, keywords, window, filters, _Clock())
            # Fusion reads the list's ranks: exact order matters for about a page of it, the
            # rest is a pool, so an int8 index re-scores no more than the window (not 3 × it).
            # The page size, not the page, so every page fuses the same list.
            semantic = self._semantic(query, window, plan, filters, min_score, clock, ranked_top=plan.k)
            keyword = keyword_list.result()
            clock.ms["backend"] = before + (time.perf_counter() - started) * 1000.0
            started = time.perf_counter()
            fused = _Fused(
                reciprocal_rank_fusion(
                    [
                        (self.settings.hybrid_semantic_weight, [h.post.id for h in semantic.hits]),
                        (self.settings.hybrid_keyword_weight, [h.post.id for h in keyword.hits]),
                    ],
                    self.settings.rrf_k,
                ),
                {h.post.id: h for h in keyword.hits} | {h.post.id: h for h in semantic.hits},
                semantic.exhausted and keyword.exhausted,
                semantic.ranks.merged(keyword.ranks),
                semantic.similarity,
            )
            fusions[window] = fused
            clock.add("fuse", started)
        started = time.perf_counter()
        # Hit(...) rather than dataclasses.replace: several times cheaper. Grown in place, so the
        # vectors `_collapse_prefix` attached to the first hits stay for a longer prefix.
        hits, by_id = fused.hits, fused.by_id
        hits.extend(
            Hit(by_id[post_id].post, score, by_id[post_id].vector) for post_id, score in fused.ids[len(hits) : n]
        )
        clock.add("fuse", started)
        return _Ranked(hits, fused.exhausted and n >= len(fused.ids), fused.ranks, fused.similarity)

    def _attach_vectors(self, hits: list[Hit], clock: _Clock, stop: int | None = None) -> None:
        """Fills in, in place, the vectors the backend did not return with `hits[:stop]` (one get_many)."""
        stop = len(hits) if stop is None else stop
        missing = [h.id for h in hits[:stop] if h.vector is None or np.asarray(h.vector).size == 0]
        if not missing:
            return
        docs = clock.backend(lambda: self.backend.get_many(missing, with_vector=True))
        for index, hit in enumerate(hits[:stop]):
            doc = docs.get(hit.id)
            if (hit.vector is None or np.asarray(hit.vector).size == 0) and doc is not None and doc.vector.size:
                hits[index] = replace(hit, vector=np.asarray(doc.vector, dtype=np.float32))

    # -- explanation -------------------------------------------------------------------------------
    def _explain(
        self,
        parsed: ParsedQuery,
        filters: Filters,
        mode: str,
        plan: PagePlan,
        terms: Sequence[WeightedTerm],
        vectors: dict[tuple[str, str], np.ndarray],
        query: np.ndarray | None,
        keywords: KeywordQuery,
        hits: list[Hit],
        ranked: _Ranked,
        dropped: list[Collapsed],
        min_score: float | str | None,
        threshold: float | None,
        clock: _Clock,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        backend_before = clock.ms.get("backend", 0.0)
        explain: dict[str, Any] = {
            "expression": parsed.text,
            "parsed": parsed.to_text(),
            "mode": mode,
            "filters": filters_to_json(filters),
            "plan": plan.to_json(),
            "min_score": min_score,
            "collapse_threshold": threshold,
        }
        if query is not None:
            shares = contributions(list(terms), vectors, query)
            explain["terms"] = [
                {"term": _term_text(t.term), "kind": t.term.kind, "weight": t.weight, "contribution": round(c, 6)}
                for t, c in zip(terms, shares, strict=True)
            ]
            count = self.settings.explain_nearest_words
            try:
                explain["nearest_words"] = (
                    [{"word": w, "score": round(float(s), 6)} for w, s in self.nearest.nearest(query, count)]
                    if count > 0
                    else []
                )
            except VocabularyNotReady as exc:  # answer now, without them, and say so
                explain["nearest_words"] = []
                explain["nearest_words_note"] = str(exc)
        else:
            explain["terms"] = [{"term": _term_text(t.term), "kind": t.term.kind, "weight": t.weight} for t in terms]
            explain["nearest_words"] = []
        if mode != "semantic":
            explain["keyword"] = keywords.to_json()
        similarity = dict(ranked.similarity)
        if query is not None and any(h.id not in similarity for h in hits):
            # Keyword-only hits have no kNN score: their similarity comes from their stored vectors.
            self._attach_vectors(hits, clock)
            similarity |= {
                h.id: float(np.dot(h.vector, query))
                for h in hits
                if h.id not in similarity and h.vector is not None and np.asarray(h.vector).size
            }
        explain["hits"] = [
            {
                "id": h.id,
                "score": round(h.score, 6),
                **ranked.ranks.get(h.id),
                **({"similarity": round(similarity[h.id], 6)} if h.id in similarity else {}),
            }
            for h in hits
        ]
        explain["collapsed"] = [
            {"id": c.id, "duplicate_of": c.duplicate_of, "similarity": round(c.similarity, 6)} for c in dropped
        ]
        clock.add("explain", started)
        clock.ms["explain"] -= clock.ms.get("backend", 0.0) - backend_before  # stages never overlap
        explain["timings_ms"] = clock.to_json()
        return explain


def _photo_term() -> Term:
    return Term(PHOTO_KEY[0], PHOTO_KEY[1])  # type: ignore[arg-type]  # "photo": a kind outside the language


def _term_text(term: Term) -> str:
    if term.key == PHOTO_KEY:
        return "(uploaded photo)"
    if term.kind == "phrase":
        return f'"{term.text}"'
    return f"[img:{term.text}]" if term.kind == "image" else term.text
