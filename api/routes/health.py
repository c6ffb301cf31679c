"""Liveness of what the API depends on, and the Prometheus scrape."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from jointspace.api.container import ApiContainer
from jointspace.api.deps import ContainerDep, MetricsDep
from jointspace.api.schemas import ComponentHealth, HealthOut
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from jointspace.app import broker_health

router = APIRouter(tags=["operations"])


def _backend(container: ApiContainer) -> ComponentHealth:
    try:
        n = container.backend.count()
    except Exception as exc:  # any failure means "down"; the detail says which
        return ComponentHealth(ok=False, detail=f"{type(exc).__name__}: {exc}")
    kind = "elasticsearch" if container.settings.es_url else "embedded"
    return ComponentHealth(ok=True, detail=f"{kind}, {n} documents, model {container.backend.model}")


def _broker(container: ApiContainer) -> ComponentHealth:
    ok, detail = broker_health(container.settings)
    return ComponentHealth(ok=ok, detail=detail)


def _model(container: ApiContainer) -> ComponentHealth:
    bundle = container.bundle
    return ComponentHealth(ok=True, detail=f"{bundle.name}, {bundle.dim} dims")


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(container: ContainerDep) -> JSONResponse:
    parts = HealthOut(status="ok", backend=_backend(container), broker=_broker(container), model=_model(container))
    ok = parts.backend.ok and parts.broker.ok and parts.model.ok
    parts.status = "ok" if ok else "degraded"
    if container.nearest is not None:  # reported, never waited on; not-ready is not "degraded"
        parts.ready = container.nearest.ready
        parts.nearest_words = ComponentHealth(
            ok=container.nearest.state != "failed", detail=container.nearest.describe()
        )
    return JSONResponse(parts.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
)
def metrics(container: ContainerDep, api_metrics: MetricsDep) -> Response:
    try:
        api_metrics.documents.set(container.backend.count())
    except Exception:  # a scrape must not fail because the backend is down; /health says so
        pass
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
