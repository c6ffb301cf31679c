"""Typed records of the alerts part: a saved search, one of its matches, a webhook delivery's state."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from jointspace.choices import SEARCH_MODES
from jointspace.records import Post, hit_json, utc_text

MODES = SEARCH_MODES


def utc_now() -> datetime:
    return datetime.now(UTC)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class SavedSearch:
    """A query to run against every new batch of posts.

    `expression` is the query language as typed (inline filters included); `filters` holds extra
    filters in the same inline syntax (`city:london tag:beach`, from `query.filters.filters_to_text`),
    so there is one filter format. `min_score` cuts the semantic side (dot product of unit vectors);
    a keyword search has none.
    """

    id: str
    name: str
    expression: str
    mode: str = "semantic"
    min_score: float | None = None
    filters: str = ""
    webhook: str | None = None
    created_at: datetime = field(default_factory=utc_now)

    def same_definition(self, other: SavedSearch) -> bool:
        """The same search whatever its id and time: name, expression, mode, cut-off, filters, webhook."""
        return self._definition() == other._definition()

    def _definition(self) -> tuple[object, ...]:
        return (self.name, self.expression, self.mode, self.min_score, self.filters, self.webhook)

    def definition_id(self) -> str:
        """An id that follows from the definition alone. Two processes saving the same named search at
        the same moment both miss the other's copy, but both then write one record under one id
        (the stores replace by id) instead of two searches that each record and POST every match."""
        text = json.dumps(self._definition(), separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "expression": self.expression,
            "mode": self.mode,
            "min_score": self.min_score,
            "filters": self.filters,
            "webhook": self.webhook,
            "created_at": utc_text(self.created_at),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SavedSearch:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or data["expression"]),
            expression=str(data["expression"]),
            mode=str(data.get("mode") or "semantic"),
            min_score=None if data.get("min_score") is None else float(data["min_score"]),
            filters=str(data.get("filters") or ""),
            webhook=data.get("webhook") or None,
            created_at=_time(data.get("created_at")) or utc_now(),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a match's webhook POST stands: `pending` (queued or retrying), `delivered`, `failed`."""

    status: str = "pending"
    attempts: int = 0
    error: str | None = None
    updated_at: datetime = field(default_factory=utc_now)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "updated_at": utc_text(self.updated_at),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        return cls(
            status=str(data.get("status") or "pending"),
            attempts=int(data.get("attempts") or 0),
            error=data.get("error"),
            updated_at=_time(data.get("updated_at")) or utc_now(),
        )


@dataclass(frozen=True, slots=True)
class Match:
    """A post that matched a saved search, recorded once per (search, post).

    `score`: the dot product for semantic and hybrid searches, the backend's BM25 for keyword ones.
    `similarity`: the dot product whenever the search has a vector. `matched_by`: which side(s) matched.
    `cursor`: the position in the search's event stream (SSE id); set by the store.
    """

    search_id: str
    post: Post
    score: float
    matched_by: tuple[str, ...] = ("semantic",)
    similarity: float | None = None
    matched_at: datetime = field(default_factory=utc_now)
    cursor: str | None = None
    delivery: Delivery | None = None

    @property
    def post_id(self) -> str:
        return self.post.id

    def with_(self, **changes: Any) -> Match:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The post's fields (as `search --json` prints a hit) and the match's own."""
        return {
            **hit_json(self.post, self.score),
            "search_id": self.search_id,
            "matched_by": list(self.matched_by),
            "similarity": None if self.similarity is None else round(float(self.similarity), 6),
            "matched_at": utc_text(self.matched_at),
            "cursor": self.cursor,
            "webhook": self.delivery.to_json() if self.delivery else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Match:
        post = Post.from_json(
            {k: data.get(k) for k in ("id", "image", "caption", "hashtags", "city", "created_at", "author", "source")}
        )
        return cls(
            search_id=str(data["search_id"]),
            post=post,
            score=float(data["score"]),
            matched_by=tuple(data.get("matched_by") or ("semantic",)),
            similarity=None if data.get("similarity") is None else float(data["similarity"]),
            matched_at=_time(data.get("matched_at")) or utc_now(),
            cursor=data.get("cursor"),
            delivery=Delivery.from_json(data["webhook"]) if data.get("webhook") else None,
        )
