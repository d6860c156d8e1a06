"""The bad-input corpus (tests/corpus/<case>/case.yaml): every broken input fails before any cluster is
touched, with exit code 2, a message naming the place, no traceback, in bounded time and memory.

A case is a folder of input files and ``case.yaml``: ``args`` (the fleet command line; ``{inventory}`` is
the test fleet's inventory), ``expect`` (a regex the output must match) and optionally ``generate`` (a
file too big to commit, written at test time).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fleet.sim import SimFleet

CORPUS = Path(__file__).parent / "corpus"
PEAK_RSS = Path(__file__).with_name("peak_rss.py")
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "case.yaml").is_file())
TIME_LIMIT = 20.0
RSS_LIMIT_MB = 400
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SimFleet | None]]:
    """The inventory the cases run against: 2 sim clusters (whose request logs must stay empty), or
    the real cluster of ``FLEET_TEST_KUBECONFIG``."""
    if os.environ.get("FLEET_TEST_KUBECONFIG"):
        path = tmp_path_factory.mktemp("real") / "inventory.yaml"
        connection = {"kubeconfig": f"file:{os.environ['FLEET_TEST_KUBECONFIG']}"}
        if os.environ.get("FLEET_TEST_CONTEXT"):
            connection["context"] = os.environ["FLEET_TEST_CONTEXT"]
        path.write_text(yaml.safe_dump({"clusters": [{"name": "real", "connection": connection}]}))
        yield path, None
        return
    with SimFleet(clusters=2, tls=True, out_dir=tmp_path_factory.mktemp("corpus-sim")) as fleet:
        yield fleet.inventory_path, fleet


def _generate(kind: str, folder: Path) -> None:
    if kind == "manifest-50mb":  # 50 MB of ConfigMaps
        doc = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  v: " + "x" * 2000 + "\n"
        with (folder / "m.yaml").open("w") as out:
            for i in range(50 * 2**20 // len(doc) + 1):
                out.write(doc.format(i=i))
        return
    raise AssertionError(f"unknown generator {kind!r}")


def run_fleet(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, float, float]:
    """Exit code, output, seconds and fleet's own peak RSS in MB (measured by ``peak_rss.py``, which
    fleet is forked from: forked from this test process, it would count this process's RSS too)."""
    out_path = cwd.parent / f"{cwd.name}.out"
    rss_path = cwd.parent / f"{cwd.name}.rss"
    with out_path.open("wb") as out:
        start = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, str(PEAK_RSS), str(rss_path), sys.executable, "-m", "fleet", *args],
            cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
        try:
            child.wait(timeout=TIME_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            pytest.fail(f"fleet {' '.join(args)} still running after {TIME_LIMIT} s")
    seconds = time.monotonic() - start
    return child.returncode, out_path.read_text(errors="replace"), seconds, int(rss_path.read_text()) / 1024


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name: str, inventory: tuple[Path, SimFleet | None], tmp_path: Path) -> None:
    inventory_path, fleet = inventory
    spec = yaml.safe_load((CORPUS / name / "case.yaml").read_text())
    work = tmp_path / name
    shutil.copytree(CORPUS / name, work, symlinks=True)
    if spec.get("generate"):
        _generate(spec["generate"], work)
    args = [a.replace("{inventory}", str(inventory_path)) for a in spec["args"]]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FLEET_JOURNAL": str(tmp_path / "journal.sqlite"),
        "FLEET_ARTIFACTS": str(tmp_path / "artifacts"),
        "FLEET_RETRY_ATTEMPTS": "1",
        "COLUMNS": "400",
    }
    if fleet is not None:
        for cluster in fleet:
            cluster.clear_requests()
    code, output, seconds, rss = run_fleet(args, work, env)
    print(f"{name}: exit {code}, {seconds:.2f} s, {rss:.0f} MB\n{output}")
    assert "Traceback" not in output
    assert "root:x:0:0" not in output  # no file outside the case's folder was read into a message
    assert code == 2, output
    assert re.search(spec["expect"], output), f"{spec['expect']!r} not in: {output}"
    assert seconds < TIME_LIMIT
    assert rss < RSS_LIMIT_MB
    if fleet is not None:
        sent = [(c.name, r.method, r.path) for c in fleet for r in c.requests()]
        assert not sent, f"requests reached a cluster: {sent}"
