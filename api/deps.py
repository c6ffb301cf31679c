"""Dependencies for the routes, as `Annotated` aliases: the routes name what they need, the app
decides where it comes from (built once at startup in the lifespan)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request
from jointspace.api.container import ApiContainer
from jointspace.api.media import MediaStore
from jointspace.api.metrics import ApiMetrics

from jointspace.protocols import ModelBundle, SearchBackend
from jointspace.settings import Settings


def get_container(request: Request) -> ApiContainer:
    container = getattr(request.app.state, "container", None)
    if container is None:
        raise HTTPException(503, "the service is still starting")
    return container


ContainerDep = Annotated[ApiContainer, Depends(get_container)]


def get_settings(container: ContainerDep) -> Settings:
    return container.settings


def get_backend(container: ContainerDep) -> SearchBackend:
    return container.backend


def get_bundle(container: ContainerDep) -> ModelBundle:
    return container.bundle


def get_search(container: ContainerDep) -> Any:
    return container.search


def get_media(container: ContainerDep) -> MediaStore:
    return container.media


def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
BackendDep = Annotated[SearchBackend, Depends(get_backend)]
BundleDep = Annotated[ModelBundle, Depends(get_bundle)]
SearchDep = Annotated[Any, Depends(get_search)]
MediaDep = Annotated[MediaStore, Depends(get_media)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]


def require_api_key(
    settings: SettingsDep, x_api_key: Annotated[str | None, Header(description="The API key for writes")] = None
) -> None:
    """Writes need `X-API-Key` equal to JOINTSPACE_API_KEY. With no key configured, writes are
    refused outright: an open write door is never the default."""
    if not settings.api_key:
        raise HTTPException(
            403,
            "writes are disabled: no API key is configured; set JOINTSPACE_API_KEY "
            "on the server and send it in the X-API-Key header",
        )
    if not x_api_key or not secrets.compare_digest(x_api_key.encode(), settings.api_key.encode()):
        raise HTTPException(
            401, "missing or wrong API key: send the X-API-Key header", headers={"WWW-Authenticate": "X-API-Key"}
        )


WriteAccess = Annotated[None, Depends(require_api_key)]
