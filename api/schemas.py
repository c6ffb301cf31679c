"""What the API answers, as pydantic models (they are also the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from jointspace.query.request import Mode, SearchFilters
from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from jointspace.choices import SortOrder
from jointspace.records import utc_text

# A time in an answer: UTC with a `Z`, by the formatter the CLI's --json writes times with.
UtcTime = Annotated[
    datetime,
    PlainSerializer(utc_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


class PostOut(BaseModel):
    id: str
    caption: str = ""
    hashtags: list[str] = []
    city: str | None = None
    created_at: UtcTime | None = None
    author: str | None = None
    source: str | None = None
    image_url: str
    thumbnail_url: str


class HitOut(PostOut):
    score: float
    vector: list[float] | None = Field(default=None, description="Only with include_vector=true")


class SearchOut(BaseModel):
    query: str
    mode: Mode
    k: int
    page: int = Field(description="1-based")
    total: int = Field(description="Ranked results found through this page's depth")
    hits: list[HitOut]
    explain: dict[str, Any] = Field(
        default_factory=dict, description="Nearest words to the query vector, each term's share, the plan"
    )
    has_more: bool = Field(description="True when the next page may hold more hits")
    sort: SortOrder = "relevance"
    facets: FacetsOut | None = Field(default=None, description="The counts asked for with `facets`")


class WordScore(BaseModel):
    word: str
    score: float


class DescribeOut(BaseModel):
    subject: str
    words: list[WordScore]
    ready: bool = Field(
        default=True,
        description="False while the server still prepares its nearest-word "
        "vocabulary (after a cold start): `words` is empty, `note` says why",
    )
    note: str | None = None


class CityOut(BaseModel):
    city: str
    count: int


class CitiesOut(BaseModel):
    cities: list[CityOut]


class Rejected(BaseModel):
    index: int = Field(description="Position of the post in the request")
    id: str | None = None
    reason: str


class SubmitOut(BaseModel):
    accepted: list[str] = Field(description="Ids of the posts taken in")
    rejected: list[Rejected] = []
    queued: bool = Field(description="True: handed to the workers; false: indexed in-process")
    duplicates: list[str] = Field(
        default_factory=list, description="Ids already present (upserted again, not duplicated)"
    )


class PostIn(BaseModel):
    """A post in the JSONL post format (validated by ingest/validate.py; extra fields are ignored)."""

    id: str | int | None = Field(default=None, description="Stable id; absent: a hash of the image bytes")
    image: str = Field(
        description="A path below the media root (relative ones are taken from it), "
        "or, in multipart, the file name of an uploaded image"
    )
    caption: str | None = None
    hashtags: list[str] | None = Field(default=None, description="Absent: taken from the caption's #words")
    city: str | None = None
    created_at: datetime | str | None = Field(default=None, description="ISO 8601, or seconds since the epoch")
    author: str | None = None
    source: str | None = None


class PostsIn(BaseModel):
    posts: list[PostIn]


class SubmitRefusedOut(BaseModel):
    """400 of POST /posts: the error model; when posts were read but none was accepted, also
    what happened to each (the fields of SubmitOut)."""

    error: str
    message: str
    position: int | None = None
    suggestions: list[str] = []
    accepted: list[str] = []
    rejected: list[Rejected] = []
    queued: bool = False
    duplicates: list[str] = []


class DeleteOut(BaseModel):
    id: str
    deleted: bool


class ComponentHealth(BaseModel):
    ok: bool
    detail: str


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    backend: ComponentHealth
    broker: ComponentHealth
    model: ComponentHealth
    # One-time work done in the background after start-up (the nearest-word vocabulary): until it
    # is ready, answers leave out what needs it and say so. Never waited on here.
    ready: bool = True
    nearest_words: ComponentHealth | None = None


class ErrorOut(BaseModel):
    error: str
    message: str
    position: int | None = None
    suggestions: list[str] = []


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    """Every error answer's body (docs/api.md: one model for all 4xx and 5xx), from any layer:
    the handlers and the ASGI middlewares that answer before a route runs."""
    return {**ErrorOut(error=kind, message=message).model_dump(), **extra}


# --- facets and trends (issue 17) ---------------------------------------------------------------


class FacetValueOut(BaseModel):
    value: str = Field(
        description="A city, hashtag or source, lower-cased (a source: its ASCII letters), or a month (YYYY-MM)"
    )
    count: int


class FacetsOut(BaseModel):
    matching: int = Field(description="Posts in the match set: above min_score, or the facet_depth nearest")
    fields: dict[str, list[FacetValueOut]] = Field(
        description="Per facet asked for: terms most frequent first, months in time order"
    )


class TrendPointOut(BaseModel):
    period: str = Field(description="YYYY, YYYY-MM or YYYY-MM-DD (UTC)")
    count: int = Field(description="Posts of the match set in this period")
    total: int = Field(description="All posts passing the filters in this period")
    share: float = Field(description="count / total")


class TrendSeriesOut(BaseModel):
    key: str = Field(description="The city (hashtag, source) of this series")
    count: int = Field(description="Its posts in the match set")
    points: list[TrendPointOut]


class TrendsOut(BaseModel):
    query: str
    by: Literal["city", "hashtags", "source"]
    interval: Literal["day", "month", "year"]
    matching: int = Field(description="Posts in the match set")
    depth: int = Field(description="How many nearest posts the match set was drawn from")
    min_score: float | None = None
    series: list[TrendSeriesOut] = Field(description="The values most frequent in the match set first")
    explain: dict[str, Any] = Field(default_factory=dict)


SearchOut.model_rebuild()


# --- saved searches with alerts (api/routes/alerts.py) ---------------------------------------------
class AlertIn(SearchFilters):
    """A search to save: the expression and filters as for GET /search (same names: city, tag,
    source, after, before), its mode and cut-off, and where to deliver matches."""

    q: str = Field(description="The query, as for GET /search (inline filters too)")
    mode: Mode = "semantic"
    min_score: float | str | None = Field(
        default=None, description="Similarity (-1..1) a new post must reach; needed for semantic and hybrid"
    )
    webhook: str | None = Field(default=None, description="POST each match as JSON to this http(s) URL")
    name: str | None = None


class AlertOut(BaseModel):
    id: str
    name: str
    expression: str
    mode: Mode
    min_score: float | None = None
    filters: str = Field("", description="Extra filters in the query language's inline syntax")
    webhook: str | None = None
    created_at: UtcTime
    matches: int = 0


class AlertsOut(BaseModel):
    alerts: list[AlertOut]


class MatchOut(HitOut):
    search_id: str
    matched_at: UtcTime
    matched_by: list[str]
    similarity: float | None = None
    cursor: str | None = Field(default=None, description="Position in the alert's event stream (SSE id)")
    webhook: dict[str, Any] | None = Field(default=None, description="Delivery state: status, attempts, error")


class MatchesOut(BaseModel):
    alert: AlertOut
    matches: list[MatchOut] = Field(description="Newest first")
