"""A fleet of 8 simulated clusters for the engine's tests, and ``fleet`` run as a subprocess with its own
journal and artifact store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from fleet.sim import SimFleet

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"


@pytest.fixture(scope="module")
def fleet8(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with SimFleet(clusters=8, tls=True, out_dir=tmp_path_factory.mktemp("sim8")) as sim:
        yield sim


@dataclass
class Fleet:
    """``fleet`` as a user runs it, with this test's journal and artifacts."""

    home: Path

    @property
    def journal(self) -> Path:
        return self.home / "journal.sqlite"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "FLEET_JOURNAL": str(self.journal),
            "FLEET_ARTIFACTS": str(self.home / "artifacts"),
            "FLEET_RETRY_ATTEMPTS": "2",
            "FLEET_RETRY_INITIAL_DELAY": "0.01",
            "COLUMNS": "160",
            **extra,
        }

    def __call__(self, *args: str, timeout: float = 240, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fleet", *args],
            capture_output=True,
            text=True,
            env=self.env(**extra),
            timeout=timeout,
            cwd=self.home,
        )

    def popen(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "fleet", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(**extra),
            cwd=self.home,
        )

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.journal)
        try:
            return conn.execute(query, args).fetchall()
        finally:
            conn.close()


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(tmp_path)


def close(process: subprocess.Popen[str]) -> None:
    """A ``fleet.popen`` process ended for good (killed if still running) and its pipes closed."""
    if process.poll() is None:
        process.kill()
        process.wait()
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]


def inventory(
    sim: SimFleet, path: Path, *, labels: dict[str, dict[str, str]] | None = None, names: list[str] | None = None
) -> Path:
    """The sim's inventory, with extra labels per cluster and only ``names`` if given."""
    doc = yaml.safe_load(sim.inventory_path.read_text())
    for entry in doc["clusters"]:
        entry["labels"] = {**entry.get("labels", {}), **(labels or {}).get(entry["name"], {})}
        entry["connection"]["kubeconfig"] = f"file:{sim.out_dir / 'kubeconfigs' / (entry['name'] + '.yaml')}"
    if names is not None:
        doc["clusters"] = [e for e in doc["clusters"] if e["name"] in names]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def apps(sim: SimFleet, name: str) -> kubernetes.client.AppsV1Api:
    cluster = sim[name]
    client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig_path), context=cluster.name)
    return kubernetes.client.AppsV1Api(client)


def core(sim: SimFleet, name: str) -> kubernetes.client.CoreV1Api:
    cluster = sim[name]
    client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig_path), context=cluster.name)
    return kubernetes.client.CoreV1Api(client)


def report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc
