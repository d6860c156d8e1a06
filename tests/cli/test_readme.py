"""The README's library snippet runs as is (against a sim cluster as its kubeconfig.yaml), and its quickstart's
commands run one after the other and print what the README shows."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from tests.kube.manifests import deployment

pytestmark = pytest.mark.sim_only

README = Path(__file__).resolve().parents[2] / "README.md"


def _library_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1, "the README has one Python snippet"
    return blocks[0]


async def test_the_readme_library_snippet_runs_as_is(sim, tmp_path):
    cluster = sim["sim-1"]
    shutil.copy(cluster.kubeconfig_path, tmp_path / "kubeconfig.yaml")
    (tmp_path / "app.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
        + deployment(replicas=1).replace("name: web\n", "name: web\n  namespace: shop\n", 1)
    )
    (tmp_path / "snippet.py").write_text(_library_snippet())
    out = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "snippet.py"], capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
        )
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 replicas ready"


# -- the quickstart ------------------------------------------------------------------------------------

QUICKSTART_HEADING = "## Quickstart"
#: The width the quickstart's output was pasted at.
COLUMNS = "120"
_RUN_ID = re.compile(r"\brelease-\d{8}-\d{6}-[0-9a-f]{4}\b")
_POD = re.compile(r"\b(web-[0-9a-f]+)-[a-z0-9]{5}\b")
_AGE = re.compile(r"\b(\d+[dhm])?\d+s\b")
_NUMBER = re.compile(r"127\.0\.0\.1:\d+|\d+\.\d+")


def _quickstart() -> str:
    text = README.read_text()
    start = text.index(QUICKSTART_HEADING)
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def quickstart_commands() -> list[tuple[str, list[str]]]:
    """The quickstart's ``$ command`` lines (in its console blocks), each with the output shown under it."""
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", _quickstart(), flags=re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                out[-1][1].append(line)
    return out


def _items(lines: list[str]) -> list[str]:
    """The lines that say something, in a form that does not change from run to run: a table row as its
    first four cells (its continuation rows, borders and headers left out), run ids, pod suffixes, ages,
    ports and measured numbers replaced, spaces collapsed. A line of "…" stands for lines left out."""
    items = []
    for line in lines:
        line = _NUMBER.sub("N", _AGE.sub("AGE", _POD.sub(r"\1-xxxxx", _RUN_ID.sub("RUN", line)))).strip()
        if not line or line == "…" or line[0] in "┏┃┡└━─┗":
            continue
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            if not cells[0]:
                continue
            line = " | ".join(cells[:4])
        items.append(" ".join(line.split()))
    return items


def test_the_quickstart_has_the_commands_it_promises():
    commands = [c for c, _ in quickstart_commands()]
    assert commands[0] == "fleet sim up --clusters 20 --dir .fleet/sim"
    assert any(c.startswith("fleet run playbooks/release.yaml") for c in commands)
    assert any(c.startswith("fleet rehearse playbooks/release.yaml") and "--fault" in c for c in commands)
    assert "pip install -e ." in _quickstart()


@pytest.mark.slow
def test_the_readme_quickstart_runs_and_shows_what_it_says(tmp_path):
    """Every command of the quickstart, in order, in a folder holding the checkout's playbooks, with
    ``fleet`` on PATH being this checkout's (the install line before them is the README's first command)."""
    shutil.copytree(README.parent / "playbooks", tmp_path / "playbooks")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "fleet").write_text(f'#!/bin/sh\nexec {sys.executable} -m fleet "$@"\n')
    (bin_dir / "fleet").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(README.parent),
        "COLUMNS": COLUMNS,
    }
    env = {k: v for k, v in env.items() if not k.startswith("FLEET_") or k == "FLEET_TEST_REQUIRE_TOOLS"}
    started = time.monotonic()
    (up, up_output), *rest = quickstart_commands()
    sim = subprocess.Popen(
        shlex.split(up), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env
    )
    try:
        assert sim.stdout is not None
        served: list[str] = []
        while not served or served[-1].strip() != "Ctrl-C stops the fleet.":
            line = sim.stdout.readline()
            assert line, f"`{up}` ended: {''.join(served)}"
            served.append(line)
        _check(up, up_output, "".join(served), 0)
        for command, shown in rest:
            ran = subprocess.run(
                shlex.split(command), capture_output=True, text=True, cwd=tmp_path, env=env, timeout=240, check=False
            )
            failing = any(re.search(r"\d+ (failed|rolled back)", line) for line in shown)
            _check(command, shown, ran.stdout + ran.stderr, ran.returncode, expected_code=1 if failing else 0)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.communicate(timeout=60)
    assert time.monotonic() - started < 300, "the quickstart takes more than five minutes"


def _check(command: str, shown: list[str], output: str, code: int, expected_code: int = 0) -> None:
    assert "Traceback" not in output, output
    assert code == expected_code, f"`{command}` exited {code}:\n{output}"
    actual = set(_items(output.splitlines()))
    missing = [item for item in _items(shown) if item not in actual]
    assert not missing, f"`{command}`: the README shows lines it did not print: {missing}\nit printed:\n{output}"
