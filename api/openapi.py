"""The OpenAPI document as the contract: FastAPI's, plus what FastAPI cannot know.

- Every error body is the one error model (`ErrorOut`): FastAPI documents its 422 as
  `HTTPValidationError`, but our handler answers `{"error": "validation", "message": ...}`.
- Every operation documents the 500 (an unexpected error, logged) and, where it uses the backend,
  the 503 (backend or broker unavailable, or the service still starting) it may answer.
- Links from the answers that carry post ids and cities to the operations that take them, so a
  client (and an OpenAPI fuzzer) can follow a search to its posts.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from jointspace.api.schemas import PostIn, PostsIn
from pydantic import BaseModel

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _post_links(id_expression: str, with_delete: bool) -> dict[str, Any]:
    links = {
        "GetPost": {"operationRef": _ref("/posts/{post_id}", "get"), "parameters": {"post_id": id_expression}},
        "GetImage": {"operationRef": _ref("/posts/{post_id}/image", "get"), "parameters": {"post_id": id_expression}},
        "GetThumbnail": {
            "operationRef": _ref("/posts/{post_id}/thumbnail", "get"),
            "parameters": {"post_id": id_expression},
        },
        "DescribePost": {
            "operationRef": _ref("/posts/{post_id}/describe", "get"),
            "parameters": {"post_id": id_expression},
        },
    }
    if with_delete:
        links["DeletePost"] = {
            "operationRef": _ref("/posts/{post_id}", "delete"),
            "parameters": {"post_id": id_expression},
        }
    return links


# (path, method, status) → links of that answer. Only operations present in the document get them.
LINKS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("/search", "get", "200"): _post_links("$response.body#/hits/0/id", with_delete=False),
    ("/search", "post", "200"): _post_links("$response.body#/hits/0/id", with_delete=False),
    ("/posts/{post_id}", "get", "200"): _post_links("$response.body#/id", with_delete=True),
    ("/posts", "post", "200"): _post_links("$response.body#/accepted/0", with_delete=True),
    ("/cities", "get", "200"): {
        "DescribeCity": {
            "operationRef": _ref("/cities/{city}/describe", "get"),
            "parameters": {"city": "$response.body#/cities/0/city"},
        }
    },
}
# Models named by hand-written parts of the document (POST /posts reads its body itself).
EXTRA_MODELS: tuple[type[BaseModel], ...] = (PostIn, PostsIn)
# Answered before or without the backend: no 503 of their own (`/health` documents its own).
NO_BACKEND = {("/health", "get")}


def contract_openapi(app: FastAPI) -> dict[str, Any]:
    """The document served at /openapi.json (built once)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _error("A parameter of the wrong type, or a required one missing")
            responses.setdefault("500", _error("An unexpected error (logged with its traceback on the server)"))
            if (path, method) not in NO_BACKEND:
                responses.setdefault(
                    "503", _error("The backend or the broker is unavailable, or the service is still starting")
                )
            for status, links in LINKS.items():
                if status[:2] == (path, method) and status[2] in responses:
                    responses[status[2]]["links"] = links
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in EXTRA_MODELS:
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(definition.pop("$defs", {}))
        components.setdefault(model.__name__, definition)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def install(app: FastAPI) -> None:
    app.openapi = lambda: contract_openapi(app)  # type: ignore[method-assign]  # FastAPI's documented override
