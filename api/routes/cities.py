"""The cities present in the index, and the words that describe one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from jointspace.api.deps import BackendDep, SearchDep
from jointspace.api.render import word_scores
from jointspace.api.schemas import CitiesOut, CityOut, DescribeOut, ErrorOut
from jointspace.query.vocabulary import VocabularyNotReady

from jointspace.records import Filters

router = APIRouter(prefix="/cities", tags=["cities"])


@router.get("", response_model=CitiesOut)
def list_cities(backend: BackendDep) -> CitiesOut:
    return CitiesOut(cities=[CityOut(city=c, count=n) for c, n in backend.cities()])


@router.get("/{city}/describe", response_model=DescribeOut, responses={404: {"model": ErrorOut}})
def describe_city(
    city: str, backend: BackendDep, service: SearchDep, k: Annotated[int, Query(ge=1, le=100)] = 10
) -> DescribeOut:
    subject = city.strip().lower()
    # A blank name is no filter at all to Filters: without this check it would describe every post.
    if not subject or backend.count(Filters(cities=(city,))) == 0:
        raise HTTPException(404, f"no posts from {city!r}")
    try:
        return DescribeOut(subject=subject, words=word_scores(service.describe_city(city, k=k)))
    except VocabularyNotReady as exc:  # a cold start: answer now, without the words
        return DescribeOut(subject=subject, words=[], ready=False, note=str(exc))
