"""Typed records every stage shares: what a post is, what a search filters on, what a hit carries."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Post:
    """A validated post. `image` is an absolute path or file:// URL; `id` is stable."""

    id: str
    image: str
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    city: str | None = None
    created_at: datetime | None = None
    author: str | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "image": self.image,
            "caption": self.caption,
            "hashtags": list(self.hashtags),
            "city": self.city,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "author": self.author,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Post:
        created = data.get("created_at")
        return cls(
            id=str(data["id"]),
            image=str(data["image"]),
            caption=data.get("caption") or "",
            hashtags=tuple(data.get("hashtags") or ()),
            city=data.get("city"),
            created_at=datetime.fromisoformat(created) if isinstance(created, str) else created,
            author=data.get("author"),
            source=data.get("source"),
        )


@dataclass(frozen=True, slots=True)
class Document:
    """A post with its image vector (unit length, float32) and the bundle that made it."""

    post: Post
    vector: np.ndarray
    model: str

    @property
    def id(self) -> str:
        return self.post.id


def utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as every JSON answer writes a time (`2024-05-01T12:00:00Z`): the
    API's response models and the CLI's `--json` share this one formatter. A naive time counts as
    UTC (as `epoch_seconds` reads it); fractions of a second are kept."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat() + "Z"


def utc_now_seconds() -> str:
    """Now in UTC to the second, as `datetime.isoformat` writes it (`2024-05-01T12:00:00+00:00`):
    the stored form of times such as a bundle manifest's `created` or a media root's `added_at`
    (not `utc_text`'s `Z` form; stored strings keep the form they were written in)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch; a naive time counts as UTC, as Elasticsearch reads it (every
    backend and the alert check compare `Filters` times this way)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """`text` with A-Z lower-cased and nothing else changed: how a source filter ignores case, the
    same on every backend (Elasticsearch's `case_insensitive` term and SQLite's NOCASE fold ASCII
    letters only; a fuller folding in one place would make the backends disagree)."""
    return text.translate(_ASCII_LOWER)


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrictions applied inside the search (pre-filter), never after it.

    Empty tuples mean "no restriction". Cities are compared lower-cased; hashtags case-folded;
    sources ignoring the case of ASCII letters (`ascii_lower`: stored as ingested, they are folded
    at query time, so an existing index needs no re-ingest); `after` is inclusive, `before` exclusive.
    """

    cities: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    after: datetime | None = None
    before: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cities", tuple(sorted({c.strip().lower() for c in self.cities if c.strip()})))
        # Emptiness is judged after the `#` goes: a lone "#" would otherwise be a tag no post has.
        # casefold, as ingest stores hashtags (validate.py): `tag:Straße` finds `#STRASSE`.
        tags = {h.strip().casefold().lstrip("#").strip() for h in self.hashtags}
        object.__setattr__(self, "hashtags", tuple(sorted(t for t in tags if t)))
        object.__setattr__(self, "sources", tuple(sorted({ascii_lower(s.strip()) for s in self.sources if s.strip()})))

    def is_empty(self) -> bool:
        return not (self.cities or self.hashtags or self.sources or self.after or self.before)

    def merge(self, other: Filters) -> Filters:
        """Both sets of restrictions at once (cities etc. unioned per field, times narrowed)."""
        after = max((t for t in (self.after, other.after) if t), default=None)
        before = min((t for t in (self.before, other.before) if t), default=None)
        return replace(
            self,
            cities=self.cities + other.cities,
            hashtags=self.hashtags + other.hashtags,
            sources=self.sources + other.sources,
            after=after,
            before=before,
        )


# A hit as `jointspace search --json` prints it and an alert match carries it, in this order.
HIT_FIELDS = ("id", "score", "caption", "city", "hashtags", "created_at", "author", "source", "image")


def hit_json(post: Post, score: float) -> dict[str, Any]:
    """The post's fields and its score (rounded to 6 places), keyed and ordered as HIT_FIELDS; the
    time as `utc_text` writes it, as the API does."""
    created = utc_text(post.created_at) if post.created_at else None
    fields = post.to_json() | {"score": round(float(score), 6), "created_at": created}
    return {name: fields[name] for name in HIT_FIELDS}


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result. `score` is the backend's raw score (dot product for kNN, BM25 for keyword)."""

    post: Post
    score: float
    vector: np.ndarray | None = None

    @property
    def id(self) -> str:
        return self.post.id


@dataclass(slots=True)
class UpsertResult:
    """Per-item outcome of a bulk upsert: ids written, and id → reason for those refused."""

    indexed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


# --- facets, trends and newest-first (issue 17) ---------------------------------------------------

# What facets may count, what trends may group by, and their time steps (dates are UTC).
FACET_FIELDS: tuple[str, ...] = ("city", "hashtags", "source", "month")
TREND_KEYS: tuple[str, ...] = ("city", "hashtags", "source")
TREND_INTERVALS: tuple[str, ...] = ("day", "month", "year")


@dataclass(frozen=True, slots=True)
class MatchSet:
    """The posts that facets, trends and newest-first order work on, as every backend reads it:
    the `depth` posts nearest to `vector` among those passing `filters`, of which only those whose
    similarity (dot product of unit vectors) is ≥ `min_score` when one is set.

    Without a vector, a keyword match set: the `depth` best BM25 matches of `text` (any of its
    words, on caption and hashtags) among those passing `filters` that mention none of `exclude`
    as a whole word of the caption or as a hashtag (min_score does not apply to BM25)."""

    vector: np.ndarray | None
    depth: int
    filters: Filters = field(default_factory=Filters)
    min_score: float | None = None
    text: str | None = None
    exclude: tuple[str, ...] = ()


def facet_key(field: str, value: str) -> str:
    """The facet (and trend) key of a stored value of a term field: a source with its ASCII letters
    lower-cased (`Instagram` and `instagram` are one bucket, `instagram`, as the source filter takes
    them as one: filtering by a bucket's key finds its posts); cities and hashtags are stored
    lower-cased already. Sources are stored as ingested, so each backend folds them as it counts."""
    return ascii_lower(value) if field == "source" else value


@dataclass(frozen=True, slots=True)
class FacetBucket:
    value: str  # a facet_key: lower-cased city, hashtag or source (ASCII letters), or the month as YYYY-MM
    count: int


@dataclass(frozen=True, slots=True)
class FacetCounts:
    """`matching`: how many posts the match set holds; `fields`: per facet field its buckets —
    terms most frequent first (ties by value), at most the size asked; months in time order."""

    matching: int
    fields: dict[str, list[FacetBucket]]


@dataclass(frozen=True, slots=True)
class TrendBucket:
    """Posts of one key (a city, ...) in one period: `count` in the match set, `total` among all
    posts passing the filters (so share = count / total)."""

    key: str
    period: str  # YYYY, YYYY-MM or YYYY-MM-DD (UTC)
    count: int
    total: int


@dataclass(frozen=True, slots=True)
class RankedPage:
    """One page of an ordered match set and how many posts the set holds."""

    hits: list[Hit]
    total: int


@dataclass(frozen=True, slots=True)
class IndexRef:
    """One index of the configured name (`IndexLifecycle`): Elasticsearch an index behind the alias
    (`name` is the index), embedded a store folder (`name` is its path); the bundle that built it."""

    name: str
    model: str
    dim: int
