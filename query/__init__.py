"""query stage: the query language (see `parser` for the grammar), vector algebra, the search
plan and `SearchService`, which the CLI and the API call."""

from __future__ import annotations

from .parser import ParsedQuery, QueryLimits, parse
from .service import SearchResult, SearchService

__all__ = ["ParsedQuery", "QueryLimits", "SearchResult", "SearchService", "parse"]
