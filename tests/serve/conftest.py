"""``fleet serve`` in-process on 127.0.0.1 (hypercorn's trio worker in the test's nursery), over two
simulated clusters, with its own journal; requests through httpx."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from fleet.serve.auth import sign
from fleet.serve.config import ServeConfig
from fleet.serve.server import Listen, serve
from fleet.sim import SimFleet
from tests.engine.conftest import inventory

TOKEN = "serve-test-token-4f1c9a"
HMAC_KEY = "serve-test-hmac-key-77d2e0"

PLAYBOOK = """
id: hello
description: one ConfigMap per cluster, named after an input
inputs:
  - {id: name, type: STRING, required: true}
  - {id: replicas, type: INT, default: 1}
  - {id: mode, type: STRING, default: fast, values: [fast, slow]}
steps:
  - id: config
    type: apply
    namespace: default
    manifest:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "{{ inputs.name }}"}
      data: {replicas: "{{ inputs.replicas }}", mode: "{{ inputs.mode }}"}
"""


@pytest.fixture(scope="module")
def sim2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with SimFleet(clusters=2, tls=True, out_dir=tmp_path_factory.mktemp("serve-sim")) as sim:
        yield sim


@pytest.fixture
def serve_config(sim2: SimFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServeConfig:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "hello.yaml").write_text(PLAYBOOK)
    monkeypatch.setenv("SERVE_TEST_TOKEN", TOKEN)
    (tmp_path / "hmac.key").write_text(HMAC_KEY + "\n")
    return ServeConfig(
        playbooks=playbooks,
        inventory=(inventory(sim2, tmp_path / "inventory.yaml"),),
        journal=tmp_path / "journal.sqlite",
        artifacts=tmp_path / "artifacts",
        token_ref="env:SERVE_TEST_TOKEN",
        hmac_secret_ref=f"file:{tmp_path / 'hmac.key'}",
    )


@asynccontextmanager
async def running(config: ServeConfig, listen: Listen | None = None) -> AsyncIterator[str]:
    """The server for ``config``, listening until the block ends; yields its base URL."""
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, config, listen or Listen("127.0.0.1", 0)))
        try:
            yield binds[0]
        finally:
            nursery.cancel_scope.cancel()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(body: bytes, *, key: str = HMAC_KEY, at: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if at is None else at)
    return {"X-Hub-Signature-256": sign(key.encode(), timestamp, body), "X-Fleet-Timestamp": str(timestamp)}


def body(inputs: dict[str, Any]) -> bytes:
    return json.dumps({"inputs": inputs}).encode()


@dataclass
class Journal:
    path: Path

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        conn = sqlite3.connect(self.path)
        try:
            return conn.execute(query, args).fetchall()
        finally:
            conn.close()

    def runs(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT id FROM runs")]


async def wait_ended(client: httpx.AsyncClient, run_id: str, *, timeout: float = 60) -> dict[str, Any]:
    """``GET /v1/runs/ID`` until the run ended (a deadline: ``timeout`` seconds)."""
    with trio.fail_after(timeout):
        while True:
            answer = await client.get(f"/v1/runs/{run_id}", headers=bearer())
            assert answer.status_code == 200, answer.text
            doc: dict[str, Any] = answer.json()
            if doc["status"] not in ("queued", "running"):
                return doc
            await trio.sleep(0.1)


def writes(sim: SimFleet) -> list[str]:
    """The side-effecting requests the sim's clusters have seen."""
    return [
        f"{cluster.name} {r.method} {r.path}"
        for cluster in sim.clusters
        for r in cluster.requests()
        if r.method not in ("GET", "HEAD", "OPTIONS")
    ]

