"""What the API answers, as pydantic models (they are also the OpenAPI schema at /docs)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from jointspace.query.request import Mode


class PostOut(BaseModel):
    id: str
    caption: str = ""
    hashtags: list[str] = []
    city: str | None = None
    created_at: datetime | None = None
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
    explain: dict[str, Any] = Field(default_factory=dict,
                                    description="Nearest words to the query vector, each term's share, the plan")
    has_more: bool = Field(description="True when the next page may hold more hits")


class WordScore(BaseModel):
    word: str
    score: float


class DescribeOut(BaseModel):
    subject: str
    words: list[WordScore]


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
    duplicates: list[str] = Field(default_factory=list, description="Ids already present (upserted again, not duplicated)")


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


class ErrorOut(BaseModel):
    error: str
    message: str
    position: int | None = None
    suggestions: list[str] = []
