"""Saved searches with alerts: save (with the API key), list, remove, read matches, and follow new
matches live as Server-Sent Events (`GET /alerts/{id}/events`, what the page's panel listens to)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from jointspace.api.deps import ContainerDep, WriteAccess
from jointspace.api.render import post_out
from jointspace.api.schemas import AlertIn, AlertOut, AlertsOut, DeleteOut, ErrorOut, MatchesOut, MatchOut
from jointspace.query.request import check_query_length
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool

from jointspace.alerts.records import Match
from jointspace.alerts.service import AlertNotFound, AlertService, parse_since, since_from_text

router = APIRouter(prefix="/alerts", tags=["alerts"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "No such saved search"}}
# An event stream ends after this long and the browser reconnects on its own (EventSource sends
# Last-Event-ID, so nothing is missed): a server shutting down never waits long for open streams.
STREAM_MAX_S = 60.0
KEEP_ALIVE_S = 15.0


def _service(container: Any) -> AlertService:
    if container.alerts is None:
        raise HTTPException(503, "saved searches are not available in this server")
    return container.alerts


def _alert(service: AlertService, search_id: str) -> Any:
    try:
        return service.get(search_id)
    except AlertNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _since_checked(text: str | None) -> str | None:
    """A `since` that cannot be read is a 422 of the error model, as any other bad parameter:
    `since: 'soon' is neither a date nor a duration: write it as ...` (the route reads it again,
    so that a duration counts back from when the matches are read)."""
    if text is not None and text.strip():
        since_from_text(text)  # its ValueError becomes the validation error
    return text


def match_out(match: Match) -> MatchOut:
    data = match.to_json()
    return MatchOut(
        **post_out(match.post).model_dump(),
        score=float(match.score),
        search_id=match.search_id,
        matched_at=match.matched_at,
        matched_by=list(match.matched_by),
        similarity=match.similarity,
        cursor=match.cursor,
        webhook=data["webhook"],
    )


@router.post(
    "",
    response_model=AlertOut,
    status_code=201,
    responses={
        200: {"model": AlertOut, "description": "The same named search was saved before: that one."},
        400: {"model": ErrorOut},
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
    },
)
def create_alert(body: AlertIn, _: WriteAccess, container: ContainerDep, response: Response) -> AlertOut:
    """Save a search: posts indexed from now on that match it are recorded (once each) and delivered.
    A named search saved again (name, query, mode, cut-off, filters and webhook alike) answers 200
    with the one saved before, instead of 201 and a second copy; an unnamed one is always new."""
    check_query_length(body.q, container.settings.query_max_chars)
    service = _service(container)
    saved, created = service.add_or_existing(
        body.q, body.mode, body.min_score, body.webhook, body.name, body.to_filters()
    )
    if not created:
        response.status_code = 200
    return AlertOut(**service.with_matches(saved))


@router.get("", response_model=AlertsOut)
def list_alerts(container: ContainerDep) -> AlertsOut:
    return AlertsOut(alerts=[AlertOut(**a) for a in _service(container).list()])


@router.delete("/{search_id}", response_model=DeleteOut, responses={**NOT_FOUND, 401: {"model": ErrorOut}})
def delete_alert(search_id: str, _: WriteAccess, container: ContainerDep) -> DeleteOut:
    if not _service(container).remove(search_id):
        raise HTTPException(404, f"no saved search with id {search_id!r}")
    return DeleteOut(id=search_id, deleted=True)


@router.get("/{search_id}/matches", response_model=MatchesOut, responses=NOT_FOUND)
def alert_matches(
    search_id: str,
    container: ContainerDep,
    since: Annotated[
        str | None,
        AfterValidator(_since_checked),
        Query(description="ISO 8601 date or time, or a duration back from now: 15m, 2h, 7d"),
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> MatchesOut:
    """The posts that matched, newest first, each with its score."""
    service = _service(container)
    search = _alert(service, search_id)
    found = service.matches(search_id, parse_since(since), limit)
    return MatchesOut(alert=AlertOut(**service.with_matches(search)), matches=[match_out(m) for m in found])


def _event(match: Match) -> str:
    data = match_out(match).model_dump_json()
    return f"id: {match.cursor}\nevent: match\ndata: {data}\n\n"


@router.get(
    "/{search_id}/events",
    response_class=StreamingResponse,
    responses={**NOT_FOUND, 400: {"model": ErrorOut, "description": "Not an event cursor of this search"}},
)
async def alert_events(
    search_id: str,
    request: Request,
    container: ContainerDep,
    after: Annotated[str | None, Query(description="Resume after this cursor (default: from now on)")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events: one `match` event per new match (`id` = its cursor, `data` = the match as
    in /matches). Reconnecting with Last-Event-ID resumes without a gap."""
    service = _service(container)
    await run_in_threadpool(_alert, service, search_id)
    store = service.store
    # Fix the starting point before answering, so that a match recorded right after the client
    # connected is never missed.
    cursor = last_event_id or after
    try:
        # Also checks a client's cursor here, so a bad one is a 400 and not a stream that breaks
        # after its 200 (the browser would reconnect with it forever).
        first, cursor = await run_in_threadpool(store.events_after, search_id, cursor, 0.0)
    except ValueError:
        raise HTTPException(400, f"not an event cursor of this search: {cursor!r}") from None
    poll_s = container.settings.alerts_events_poll_s

    async def stream() -> AsyncIterator[str]:
        nonlocal cursor
        yield "retry: 2000\n\n"
        for match in first:
            yield _event(match)
        started = last_sent = time.monotonic()
        while time.monotonic() - started < STREAM_MAX_S:
            if await request.is_disconnected():
                return
            # Never block a pool thread while waiting: open streams would starve every other
            # synchronous route of Starlette's 40 threads. Look without waiting, then sleep here.
            found, cursor = await run_in_threadpool(store.events_after, search_id, cursor, 0.0)
            for match in found:
                yield _event(match)
                last_sent = time.monotonic()
            if found:
                continue
            if time.monotonic() - last_sent > KEEP_ALIVE_S:
                if await run_in_threadpool(store.get, search_id) is None:
                    yield f"event: removed\ndata: {json.dumps({'id': search_id})}\n\n"
                    return
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(poll_s)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
