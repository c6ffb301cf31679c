"""OPTIONS and 405 for the API's paths, with an `Allow` header that lists what the path takes.

Without this, a method a path does not take falls through to the page's StaticFiles mount at `/`,
which answers 405 with `Allow: GET, HEAD` for every path, `/posts` (POST) and `/posts/{id}`
(GET, DELETE) included. This middleware answers first, from the methods the app's OpenAPI
document lists for the path: OPTIONS gets 204 and `Allow`; a method the path does not take gets
the JSON error and 405 with `Allow`. GET and HEAD of paths the API does not document pass
through to the page.
"""

from __future__ import annotations

import json
import re

from jointspace.api.schemas import error_body
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def documented_methods(openapi: dict) -> list[tuple[re.Pattern[str], set[str]]]:
    """Each documented path as a regex, with its methods (the OpenAPI document is the contract the
    `Allow` header must agree with; FastAPI's own routes are not all plain, listable Routes)."""
    table = []
    for path, operations in openapi.get("paths", {}).items():
        regex, _, _ = compile_path(path)
        table.append((regex, {m.upper() for m in operations if m.upper() in ORDER}))
    return table


def allow_header(methods: set[str]) -> str:
    """`GET, DELETE, OPTIONS`: the page's GET and HEAD where no API route matches the path."""
    methods = methods or {"GET", "HEAD"}
    return ", ".join([m for m in ORDER if m in methods] + ["OPTIONS"])


class MethodAnswersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: list[tuple[re.Pattern[str], set[str]]] | None = None

    def _methods_for(self, scope: Scope) -> set[str]:
        if self._table is None:  # built on the first request: every router is included by then
            self._table = documented_methods(scope["app"].openapi())
        path = scope["path"]
        return set().union(*(methods for regex, methods in self._table if regex.match(path)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        methods = self._methods_for(scope)
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        if method in methods or (not methods and method == "GET"):  # the page's files: GET and HEAD
            await self.app(scope, receive, send)
            return
        allow = allow_header(methods)
        if scope["method"] == "OPTIONS":
            status, body = 204, b""
            headers = [(b"allow", allow.encode())]
        else:
            status = 405
            body = json.dumps(
                error_body("method_not_allowed", f"{scope['method']} is not allowed here; allowed: {allow}")
            ).encode()
            headers = [
                (b"allow", allow.encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
