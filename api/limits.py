"""A cap on request body size, enforced while the body streams in.

Hand-written because neither Starlette nor uvicorn bounds the whole body: Content-Length is
checked up front, and chunked bodies (no length) are counted as they arrive, so an endless
upload is cut off at the limit instead of filling memory or disk.
"""

from __future__ import annotations

import json

from jointspace.api.schemas import error_body
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing passes it on as a 413 instead of a 400."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


class MaxBodySizeMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reply(send, 400, "invalid Content-Length header")
                    return
                if declared > self.max_bytes:
                    await self._reply(send, 413, self._message())
                    return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self._message())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reply(send, 413, self._message())

    def _message(self) -> str:
        return f"request body larger than {self.max_bytes} bytes (JOINTSPACE_API_MAX_REQUEST_BYTES)"

    @staticmethod
    async def _reply(send: Send, status: int, message: str) -> None:
        body = json.dumps(error_body("request", message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
