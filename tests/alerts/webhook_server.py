"""A real local HTTP server that receives webhook POSTs (the alert tests' receiver).

`/ok` accepts every POST; `/flaky` answers 503 to the first `flaky_failures` POSTs of each delivery
key, then accepts; `/gone` always answers 404. Every POST is kept with its path, headers and body.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    delivery: str
    body: dict[str, Any]
    status: int


@dataclass
class WebhookServer:
    flaky_failures: int = 2
    received: list[Received] = field(default_factory=list)
    _seen: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                key = self.headers.get("X-Jointspace-Delivery", "")
                with owner._lock:
                    owner._seen[(self.path, key)] += 1
                    status = 200
                    if self.path == "/gone":
                        status = 404
                    elif self.path == "/flaky" and owner._seen[(self.path, key)] <= owner.flaky_failures:
                        status = 503
                    owner.received.append(Received(self.path, key, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def accepted(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path and r.status == 200]

    def all(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
