"""GET /search (an expression) and POST /search (a photo, plus optional terms)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from jointspace.api.deps import BundleDep, MetricsDep, SearchDep, SettingsDep
from jointspace.api.render import hit_out, jsonable
from jointspace.api.schemas import ErrorOut, Mode, SearchOut
from jointspace.api.uploads import read_upload_image
from jointspace.errors import QueryError
from jointspace.records import Filters
from jointspace.settings import Settings

router = APIRouter(tags=["search"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut, "description": "The query cannot run"}}


def check_query(q: str, settings: Settings) -> None:
    if len(q) > settings.api_max_query_chars:
        raise QueryError(f"query longer than {settings.api_max_query_chars} characters ({len(q)}); "
                         "shorten it", position=settings.api_max_query_chars, expression=None)


def check_k(k: int | None, settings: Settings) -> int:
    k = settings.default_k if k is None else k
    if not 1 <= k <= settings.max_k:
        raise QueryError(f"k must be between 1 and {settings.max_k} (JOINTSPACE_MAX_K), not {k}")
    return k


def make_filters(city: list[str] | None, tag: list[str] | None,
                 after: datetime | None, before: datetime | None) -> Filters:
    return Filters(cities=tuple(city or ()), hashtags=tuple(tag or ()), after=after, before=before)


def answer(result: Any, q: str, mode: str, include_vector: bool) -> SearchOut:
    hits = [hit_out(h, include_vector) for h in result.hits]
    return SearchOut(query=q, mode=mode, k=result.k, page=result.page, hits=hits, total=result.total,
                     explain=jsonable(result.explain) or {}, has_more=bool(result.has_more))


@router.get("/search", response_model=SearchOut, responses=ERRORS)
def search(
    service: SearchDep, settings: SettingsDep, metrics: MetricsDep,
    q: Annotated[str, Query(description="Expression: `beach+sunrise`, `bike-park`, `[img:42]+park`, "
                                        "`2*dog city:paris`")] = "",
    mode: Mode = "semantic",
    city: Annotated[list[str] | None, Query(description="Only these cities (repeatable)")] = None,
    tag: Annotated[list[str] | None, Query(description="Only posts with these hashtags (repeatable)")] = None,
    after: datetime | None = None,
    before: datetime | None = None,
    k: Annotated[int | None, Query(description="Hits per page (1..max_k)")] = None,
    page: Annotated[int, Query(ge=1, description="1-based page of k hits")] = 1,
    min_score: float | None = None,
    include_vector: bool = False,
) -> SearchOut:
    check_query(q, settings)
    k = check_k(k, settings)
    try:
        result = service.search(q, filters=make_filters(city, tag, after, before), mode=mode, k=k,
                                page=page, min_score=min_score, include_vectors=include_vector)
    except QueryError:
        metrics.searches.labels(mode, "query_error").inc()
        raise
    metrics.searches.labels(mode, "ok").inc()
    return answer(result, q, mode, include_vector)


@router.post("/search", response_model=SearchOut, responses=ERRORS)
def search_by_image(
    service: SearchDep, bundle: BundleDep, settings: SettingsDep, metrics: MetricsDep,
    image: Annotated[UploadFile, File(description="A photo to search with (need not be indexed)")],
    q: Annotated[str, Form(description="Optional terms to add or subtract: `+beach`, `-people`")] = "",
    weight: Annotated[float, Form(description="Weight of the photo against the terms")] = 1.0,
    mode: Annotated[Mode, Form()] = "semantic",
    city: Annotated[list[str] | None, Form()] = None,
    tag: Annotated[list[str] | None, Form()] = None,
    k: Annotated[int | None, Form()] = None,
    page: Annotated[int, Form(ge=1)] = 1,
    min_score: Annotated[float | None, Form()] = None,
    include_vector: Annotated[bool, Form()] = False,
) -> SearchOut:
    check_query(q, settings)
    k = check_k(k, settings)
    picture = read_upload_image(image, settings)
    vector = bundle.image.embed_images([picture])[0]
    result = service.search_vector(vector, weight=weight, expression=q,
                                   filters=make_filters(city, tag, None, None), mode=mode, k=k, page=page,
                                   min_score=min_score, include_vectors=include_vector)
    metrics.searches.labels(f"{mode}+image", "ok").inc()
    return answer(result, q, mode, include_vector)
