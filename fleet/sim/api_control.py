"""The control endpoint of a running fleet: ``fleet sim fault`` switches a cluster's faults through it.

Plain HTTP on 127.0.0.1, with a bearer token; ``SimFleet(control=True)`` writes its address and token
to ``<out_dir>/control.json`` (mode 0600).

    GET /clusters                      -> [{"name", "server", "faults"}]
    PUT /clusters/<name>/faults        <- {"latency": 0.2, "down": true, ...} (fields of ``Faults``)
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from fleet.sim.api_app import Connection
from fleet.sim.api_http import JSON, Receive, Scope, Send, header_map, read_body, send_start
from fleet.sim.faults import Faults, faults_from_mapping, faults_to_mapping

# name -> (server URL, current faults, function that switches them)
ClusterControls = Mapping[str, tuple[str, Callable[[], Faults], Callable[[Faults], None]]]


class ControlApp:
    """The ASGI app of the control endpoint."""

    def __init__(self, token: str, clusters: ClusterControls) -> None:
        self.token = token
        self.clusters = clusters

    async def __call__(self, scope: Scope, receive: Receive, send: Send, conn: Connection) -> None:
        if scope["type"] != "http":
            return
        status, body = await self._handle(scope, receive)
        data = json.dumps(body).encode()
        await send_start(send, status, JSON, {}, len(data))
        await send({"type": "http.response.body", "body": data, "more_body": False})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        auth = header_map(scope).get("authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.token}".encode()):
            return 401, {"error": "a valid bearer token is required (see control.json)"}
        parts = [p for p in scope["path"].split("/") if p]
        method = scope["method"]
        if parts == ["clusters"] and method == "GET":
            return 200, [
                {"name": name, "server": server, "faults": faults_to_mapping(current())}
                for name, (server, current, _) in self.clusters.items()
            ]
        if len(parts) == 3 and parts[0] == "clusters" and parts[2] == "faults" and method == "PUT":
            entry = self.clusters.get(parts[1])
            if entry is None:
                return 404, {"error": f"no cluster named {parts[1]!r}; known: {', '.join(self.clusters)}"}
            try:
                data = json.loads(await read_body(receive, 64 * 1024) or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("expected a JSON object of fault fields")
                faults = faults_from_mapping(data)
            except ValueError as e:
                return 400, {"error": str(e)}
            entry[2](faults)
            return 200, {"name": parts[1], "faults": faults_to_mapping(faults)}
        return 404, {"error": f"no such endpoint: {method} {scope['path']}"}
