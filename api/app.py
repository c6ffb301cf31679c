"""The FastAPI application: routes, error mapping, limits, metrics and the web page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from jointspace.api import openapi
from jointspace.api.container import ApiContainer, build_container, warm_up
from jointspace.api.docs_page import add_docs_page
from jointspace.api.limits import MaxBodySizeMiddleware
from jointspace.api.methods import MethodAnswersMiddleware
from jointspace.api.metrics import ApiMetrics, MetricsMiddleware
from jointspace.api.routes import alerts, cities, health, posts, search, trends
from jointspace.api.schemas import error_body
from jointspace.query.request import error_line
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from jointspace.broker import broker_down_types, broker_unavailable, is_broker_down
from jointspace.errors import JointspaceError, QueryError, error_kind
from jointspace.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"
log = logging.getLogger("jointspace.api")


def create_app(settings: Settings | None = None, container: ApiContainer | None = None) -> FastAPI:
    """The app. Given `container`, it uses that and leaves closing it to the caller; otherwise it
    builds its own at startup (model load, backend open) and closes it at shutdown. Without
    settings (uvicorn's factory, one per server process: API start-up) they come from the environment."""
    if settings is None:
        from jointspace.app import settings_from_environment

        settings = container.settings if container else settings_from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built: ApiContainer | None = None
        if container is not None:
            active = container
        else:
            active = built = await run_in_threadpool(build_container, settings)
        await run_in_threadpool(warm_up, active)
        app.state.container = active
        try:
            yield
        finally:
            if built is not None:
                await run_in_threadpool(built.close)

    app = FastAPI(
        title="jointspace",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Semantic image search with word and image arithmetic "
        "(`beach+sunrise`, `bike-park`, `[img:42]+park`).",
    )
    app.state.settings = settings
    app.state.metrics = ApiMetrics()

    for router in (search.router, posts.router, cities.router, health.router, trends.router, alerts.router):
        app.include_router(router)
    _add_error_handlers(app)
    openapi.install(app)
    add_docs_page(app)  # before the page's mount at `/`, which would answer /docs otherwise
    app.add_middleware(MethodAnswersMiddleware)
    # Added last = outermost: the size cap answers before anything reads the body, and the
    # metrics see every answer, the 413s included.
    app.add_middleware(MaxBodySizeMiddleware, max_bytes=settings.api_max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="page")
    return app


def _error(status: int, kind: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse(error_body(kind, message, **extra), status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(JointspaceError)
    async def known(_: Request, exc: JointspaceError) -> JSONResponse:
        if isinstance(exc, QueryError):  # with where it went wrong and what was meant
            return JSONResponse({**exc.to_json(), "expression": exc.expression}, status_code=400)
        kind, status = error_kind(exc)
        return _error(status, kind, str(exc))

    async def broker_down(request: Request, exc: Exception) -> JSONResponse:
        # Redis down under the alerts, the dead letters or the queue: a 503 naming it, as for Elasticsearch.
        known_error = broker_unavailable(request.app.state.settings.broker_url, exc)
        log.warning("%s", known_error)
        kind, status = error_kind(known_error)
        return _error(status, kind, str(known_error))

    for down in broker_down_types():
        app.add_exception_handler(down, broker_down)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "auth", 403: "auth", 404: "not_found", 413: "too_large"}.get(exc.status_code, "request")
        return JSONResponse(
            error_body(kind, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "validation", error_line(exc.errors(), skip=("query", "body")) or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_broker_down(exc):  # raised from another error (Celery's result backend giving up)
            return await broker_down(request, exc)
        # Logged with its traceback for the operator; the client gets no internals.
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "internal", "internal error; see the server log")
