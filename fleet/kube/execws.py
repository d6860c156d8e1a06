"""Exec in a container over WebSocket (``kubernetes.stream.ws_client``), channel protocol v5 (or v4).

stdin is sent in frames and then closed (a v5 CLOSE signal, so that e.g. ``tar x`` sees end of input);
stdout and stderr are collected as bytes; the exit code comes from the error channel's Status.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import websocket
from kubernetes.stream import ws_client

from fleet.errors import ClusterError, truncate
from fleet.kube.api_errors import ConnectFailed, api_error, translate
from fleet.kube.retry import retrying

if TYPE_CHECKING:
    from fleet.kube.client import ExecResult, KubeClient

log = logging.getLogger(__name__)

_FRAME = 64 * 1024
_POLL_SECONDS = 0.5


def _exit_code(status_text: bytes, *, cluster: str, operation: str) -> tuple[int, str]:
    """(exit code, message) from the error channel; other failures raise ``ClusterError``."""
    if not status_text:
        return 0, ""
    try:
        status: Any = json.loads(status_text)
    except ValueError as e:
        text = truncate(status_text.decode("utf-8", "replace"), 500)
        raise ClusterError(f"{operation}: {text}", cluster=cluster) from e
    if status.get("status") == "Success":
        return 0, ""
    message = str(status.get("message") or "")
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), message
            except (TypeError, ValueError):
                break
    raise ClusterError(f"{operation}: {status.get('reason') or 'Failure'}: {truncate(message, 500)}", cluster=cluster)


async def run_exec(
    client: KubeClient,
    namespace: str,
    pod: str,
    command: list[str],
    *,
    container: str | None,
    stdin: bytes | None,
) -> ExecResult:
    from fleet.kube.client import ExecResult

    operation = f"exec in pod {namespace}/{pod}" + (f" container {container}" if container else "")
    query: list[tuple[str, str]] = [("command", part) for part in command]
    query += [("stdout", "true"), ("stderr", "true"), ("stdin", "true" if stdin is not None else "false")]
    if container:
        query.append(("container", container))
    to_ws_url: Any = ws_client.get_websocket_url
    url = to_ws_url(client.url(f"/api/v1/namespaces/{namespace}/pods/{pod}/exec"), query)

    def connect() -> Any:
        headers, token = client._headers(None, "*/*")
        try:
            ws_class: Any = ws_client.WSClient
            return ws_class(client.api_client.configuration, url, headers, False, binary=True)
        except websocket.WebSocketBadStatusException as e:
            if e.status_code == 401 and token is not None and client.token_provider is not None:
                client.token_provider.invalidate(token)
            raise api_error(e.status_code, e.resp_body, e.resp_headers, cluster=client.name, operation=operation) from e
        except (websocket.WebSocketException, OSError) as e:
            raise ConnectFailed(f"{operation}: {type(e).__name__}: {truncate(str(e), 300)}", cluster=client.name) from e

    ws: Any = None
    async for attempt in retrying(client.settings.retry, cluster=client.name, operation=operation):
        with attempt:
            ws = await client._in_thread(connect, stream=True)
    assert ws is not None
    stdout = bytearray()
    stderr = bytearray()

    def send_stdin() -> None:
        assert ws is not None
        assert stdin is not None
        for start in range(0, len(stdin), _FRAME):
            ws.write_stdin(stdin[start : start + _FRAME])
        if ws.subprotocol == ws_client.V5_CHANNEL_PROTOCOL:
            ws.close_channel(ws_client.STDIN_CHANNEL)
        else:
            log.warning(
                "%s on %s: the server speaks %s, stdin cannot be closed", operation, client.name, ws.subprotocol
            )

    def pump() -> bool:
        assert ws is not None
        ws.update(timeout=_POLL_SECONDS)
        stdout.extend(ws.read_channel(ws_client.STDOUT_CHANNEL))
        stderr.extend(ws.read_channel(ws_client.STDERR_CHANNEL))
        return bool(ws.is_open())

    try:
        try:
            if stdin is not None:
                await client._in_thread(send_stdin, stream=True)
            while await client._in_thread(pump, stream=True):
                pass
        except (websocket.WebSocketException, OSError) as e:
            raise translate(e, cluster=client.name, operation=operation) from e
        code, message = _exit_code(
            bytes(ws.read_channel(ws_client.ERROR_CHANNEL)), cluster=client.name, operation=operation
        )
    finally:
        ws.close()
    return ExecResult(stdout=bytes(stdout), stderr=bytes(stderr), exit_code=code, message=message)
