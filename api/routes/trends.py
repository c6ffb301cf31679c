"""GET /trends: per city (hashtag, source) and period, how many posts match a query, and their share."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from jointspace.api.deps import SearchDep, SettingsDep
from jointspace.api.render import jsonable
from jointspace.api.schemas import ErrorOut, TrendsOut
from jointspace.query.request import TrendsRequest

router = APIRouter(tags=["search"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut, "description": "The query cannot run"}}


@router.get("/trends", response_model=TrendsOut, responses=ERRORS)
def trends(service: SearchDep, settings: SettingsDep, params: Annotated[TrendsRequest, Query()]) -> TrendsOut:
    """The match set is the one facets count (the kNN hits above `min_score`, or the `facet_depth`
    nearest, with the filters); each point's share is its count over all posts that pass the
    filters in that period."""
    request = params.checked(settings)
    result = service.trends(
        request.q, by=request.by, interval=request.interval, filters=request.to_filters(), min_score=request.min_score
    )
    return TrendsOut(**jsonable(result.to_json()))
