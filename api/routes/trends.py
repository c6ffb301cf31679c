"""GET /trends: per city (hashtag, source) and period, how many posts match a query, and their share."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from jointspace.api.deps import SearchDep
from jointspace.api.render import jsonable
from jointspace.api.schemas import ErrorOut, TrendsOut
from jointspace.records import Filters

router = APIRouter(tags=["search"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut, "description": "The query cannot run"}}


@router.get("/trends", response_model=TrendsOut, responses=ERRORS)
def trends(
    service: SearchDep,
    q: Annotated[str, Query(description="Expression, as for /search: `beach+sunset city:paris`")],
    by: Annotated[Literal["city", "hashtags", "source"], Query(description="One series per value of this field")]
    = "city",
    interval: Annotated[Literal["day", "month", "year"], Query(description="Period of each point (UTC)")] = "month",
    city: Annotated[list[str] | None, Query(description="Only these cities (repeatable)")] = None,
    tag: Annotated[list[str] | None, Query(description="Only posts with these hashtags (repeatable)")] = None,
    source: Annotated[list[str] | None, Query(description="Only these sources (repeatable)")] = None,
    after: datetime | None = None,
    before: datetime | None = None,
    min_score: Annotated[float | None, Query(description="Match set: posts at least this similar; "
                                                         "unset: the facet_depth nearest")] = None,
) -> TrendsOut:
    """The match set is the one facets count (the kNN hits above `min_score`, or the `facet_depth`
    nearest, with the filters); each point's share is its count over all posts that pass the
    filters in that period."""
    filters = Filters(cities=tuple(city or ()), hashtags=tuple(tag or ()), sources=tuple(source or ()),
                      after=after, before=before)
    result = service.trends(q, by=by, interval=interval, filters=filters, min_score=min_score)
    return TrendsOut(**jsonable(result.to_json()))
