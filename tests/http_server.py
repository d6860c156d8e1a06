"""A real HTTP server on 127.0.0.1 for the ``http`` and ``notify`` steps' tests: a model registry, a
Slack-compatible webhook, and endpoints that answer a given status, answer late, or fail a few times.

    POST /models             register a model (needs ``Authorization: Bearer <token>``): 201 with the
                             model's JSON, plus the Authorization header it received (as a careless
                             service would echo it)
    GET  /models/<name>      the model last registered under <name>, or 404
    GET  /status/<code>      answers <code> with a long text body
    GET  /slow/<seconds>     answers 200 after <seconds>
    GET  /flaky/<key>/<n>    503 for the first <n> requests of <key>, then 200 with JSON
    POST /hooks/<token>      a webhook: keeps the JSON message, answers ``ok`` (text/plain)
    GET  /tenants/<tenant>/  a tenant's entry point: 200, or 503 for the tenants in ``failing``
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

TOKEN = "registry-token-7f3a9c1e"
HOOK = "T000/B000/hook-secret-5d2e8b"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class TestServer:
    __test__ = False

    url: str
    requests: list[Received] = field(default_factory=list)
    models: list[Any] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    failing: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def webhook(self) -> str:
        return f"{self.url}/hooks/{HOOK}"

    def messages(self) -> list[Any]:
        return [r.json() for r in self.requests if r.path.startswith("/hooks/")]


class _Handler(BaseHTTPRequestHandler):
    server_version = "fleet-test/1.0"
    state: TestServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows stderr of failures
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self.state
        with state.lock:
            state.requests.append(Received(self.command, self.path, dict(self.headers.items()), body))
        parts = urlsplit(self.path).path.strip("/").split("/")
        if self.command == "POST" and parts == ["models"]:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"error": "unauthorized"})
            with state.lock:
                model = {**json.loads(body), "id": f"m-{len(state.models) + 1}"}
                state.models.append(model)
            return self._send(201, {**model, "receivedAuthorization": self.headers.get("Authorization")})
        if self.command == "GET" and parts[0] == "models" and len(parts) == 2:
            model = next((m for m in reversed(state.models) if m["name"] == parts[1]), None)
            return self._send(200, model) if model else self._send(404, {"error": f"no model {parts[1]}"})
        if parts[0] == "status" and len(parts) == 2:
            return self._send(int(parts[1]), "the server said no. " * 100)
        if parts[0] == "slow" and len(parts) == 2:
            time.sleep(float(parts[1]))
            return self._send(200, {"slow": True})
        if parts[0] == "flaky" and len(parts) == 3:
            with state.lock:
                state.counts[parts[1]] += 1
                seen = state.counts[parts[1]]
            if seen <= int(parts[2]):
                return self._send(503, "try again")
            return self._send(200, {"attempt": seen})
        if self.command == "GET" and parts[0] == "tenants" and len(parts) == 2:
            return self._send(503 if parts[1] in state.failing else 200, f"tenant {parts[1]}")
        if self.command == "POST" and parts[0] == "hooks":
            return self._send(200, "ok")
        return self._send(404, {"error": "no such endpoint"})

    def _send(self, status: int, payload: Any) -> None:
        text = isinstance(payload, str)
        data = payload.encode() if text else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serving() -> Iterator[TestServer]:
    """The server on a free port of 127.0.0.1, stopped (and its thread joined) on exit."""
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state = TestServer(f"http://127.0.0.1:{server.server_address[1]}")
    handler.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-http-server")
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
