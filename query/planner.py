"""How deep to search for a page: pure arithmetic from the page size, the page and Settings.

Pages stay consistent because `num_candidates` does not depend on the page while the depth
(k × page) fits in it: an approximate kNN then ranks the same candidates for every page and
the top k×page is a prefix of the top k×(page+1). With the defaults (factor 10, at least 100)
that covers the first 10 pages; beyond, an approximate backend may reorder (Elasticsearch's
HNSW, and the embedded store once it walks its graph: above `embedded_ann_min_rows` matching
rows, where a filtered walk widens with the depth).
"""

from __future__ import annotations

from dataclasses import dataclass

from jointspace.errors import QueryError
from jointspace.settings import Settings


@dataclass(frozen=True, slots=True)
class PagePlan:
    k: int  # hits per page
    page: int  # 1-based
    depth: int  # results needed through this page: k × page
    num_candidates: int  # per-shard kNN candidate pool, ≥ depth
    window: int  # how many each list of a hybrid search ranks before fusion
    cap: int  # the most any list may fetch while refilling collapsed duplicates

    @property
    def start(self) -> int:
        return (self.page - 1) * self.k

    def to_json(self) -> dict[str, int]:
        return {
            "k": self.k,
            "page": self.page,
            "depth": self.depth,
            "num_candidates": self.num_candidates,
            "window": self.window,
        }


def plan_page(k: int, page: int, settings: Settings) -> PagePlan:
    """The plan for page `page` of `k` hits. Raises QueryError when k or page are out of bounds."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be a whole number of at least 1, not {k!r}")
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise QueryError(f"page must be a whole number of at least 1, not {page!r}")
    if k > settings.max_k:
        raise QueryError(f"k = {k} is above the limit of {settings.max_k} (JOINTSPACE_MAX_K)")
    depth = k * page
    if depth > settings.max_k:
        raise QueryError(
            f"page {page} of {k} would need the top {depth} results; the limit is "
            f"{settings.max_k} (JOINTSPACE_MAX_K): narrow the query instead"
        )
    num_candidates = settings.num_candidates(k, depth=depth)
    cap = max(settings.max_num_candidates, depth)
    return PagePlan(k=k, page=page, depth=depth, num_candidates=num_candidates, window=num_candidates, cap=cap)
