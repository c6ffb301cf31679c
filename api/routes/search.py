"""GET /search (an expression) and POST /search (a photo, plus optional terms)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from jointspace.api.deps import BundleDep, MetricsDep, SearchDep, SettingsDep
from jointspace.api.render import hit_out, jsonable
from jointspace.api.schemas import ErrorOut, FacetsOut, SearchOut
from jointspace.api.uploads import read_upload_image
from jointspace.query.matching import facets_json
from jointspace.query.request import PhotoSearchRequest, SearchRequest, merge_sources

from jointspace.errors import QueryError

router = APIRouter(tags=["search"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut, "description": "The query cannot run"}}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The query cannot run, or the upload is not a readable image"},
    413: {"model": ErrorOut, "description": "The image or the request is too large"},
}


def answer(result: Any, request: SearchRequest) -> SearchOut:
    hits = [hit_out(h, request.include_vector) for h in result.hits]
    return SearchOut(
        query=request.q,
        mode=request.mode,
        k=result.k,
        page=result.page,
        hits=hits,
        total=result.total,
        explain=jsonable(result.explain) or {},
        has_more=bool(result.has_more),
        sort=result.sort,
        facets=FacetsOut(**facets_json(result.facets)) if result.facets is not None else None,
    )


@router.get("/search", response_model=SearchOut, responses=ERRORS)
def search(
    service: SearchDep, settings: SettingsDep, metrics: MetricsDep, params: Annotated[SearchRequest, Query()]
) -> SearchOut:
    request = params.checked(settings)
    try:
        result = service.search(request.q, **request.search_arguments())
    except QueryError:
        metrics.searches.labels(request.mode, "query_error").inc()
        raise
    metrics.searches.labels(request.mode, "ok").inc()
    return answer(result, request)


@router.post("/search", response_model=SearchOut, responses=ERRORS | UPLOAD_ERRORS)
def search_by_image(
    service: SearchDep,
    bundle: BundleDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    image: Annotated[UploadFile, File(description="A photo to search with (need not be indexed)")],
    form: Annotated[PhotoSearchRequest, Form()],
    in_url: Annotated[PhotoSearchRequest, Query()],
) -> SearchOut:
    """The parameters of GET /search plus `weight`, in the form or in the query string
    (a parameter given in both must have the same value)."""
    request = PhotoSearchRequest.from_values(merge_sources(in_url, form, "query string and form"), settings)
    picture = read_upload_image(image, settings)
    vector = bundle.image.embed_images([picture])[0]
    label = f"{request.mode}+image"
    try:
        result = service.search_vector(
            vector, weight=request.weight, expression=request.q, **request.search_arguments()
        )
    except QueryError:
        metrics.searches.labels(label, "query_error").inc()
        raise
    metrics.searches.labels(label, "ok").inc()
    return answer(result, request)
