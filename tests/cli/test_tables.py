"""An 80-column rendering (what Rich assumes when piped) of apply, get and a failure; ages normalized."""

from __future__ import annotations

import re
import uuid

import pytest
import trio

from fleet.sim.faults import Faults
from tests.cli.test_fanout_cli import _app, run
from tests.kube.test_cli_ops import fleet

pytestmark = pytest.mark.sim_only

APPLY = """\
CLUSTER   KIND         NAMESPACE   NAME        RESULT
sim-0     Namespace                snap-NNNN   created
sim-0     ConfigMap    snap-NNNN   settings    created
sim-0     Deployment   snap-NNNN   web         created
sim-1     Namespace                snap-NNNN   created
sim-1     ConfigMap    snap-NNNN   settings    created
sim-1     Deployment   snap-NNNN   web         created
sim-2     error: discovery PATH: connection refused after 2 attempts in T
3 clusters: 2 succeeded, 1 failed (sim-2)
"""

GET = """\
CLUSTER   NAMESPACE   NAME   READY   STATUS    AGE
sim-0     snap-NNNN   web    1/1     Current   AGE
sim-1     snap-NNNN   web    1/1     Current   AGE
sim-2     error: discovery PATH: connection refused after 2 attempts in T
3 clusters: 2 succeeded, 1 failed (sim-2)
"""


def _normalize(text: str, name: str) -> str:
    text = text.replace(name, "snap-NNNN")
    text = re.sub(r"in \d+\.\d+ s", "in T", text)
    # discovery asks for several paths at once; which one meets the refused connection first is a race
    text = re.sub(r"discovery /\S+:", "discovery PATH:", text)
    return re.sub(r"Current   \d+s", "Current   AGE", text)


async def test_apply_get_and_a_failure_at_80_columns(sim, tmp_path):
    name = f"snap-{uuid.uuid4().hex[:4]}"
    path = _app(tmp_path, name)
    inv = str(sim.inventory_path)
    down = sim["sim-2"]
    await trio.to_thread.run_sync(down.set_faults, Faults(down=True))
    try:
        applied = await run("apply", "-f", str(path), "-i", inv, "--wait", "1m")
        got = await run("get", "deploy", "-n", name, "-i", inv)
    finally:
        await trio.to_thread.run_sync(down.set_faults, Faults())
        await trio.to_thread.run_sync(
            lambda: fleet("delete", "namespace", name, "-i", inv, "--ignore-not-found", "--wait", "1m")
        )
    assert _normalize(applied.stdout, name) == APPLY
    assert _normalize(got.stdout, name) == GET
    for line in (applied.stdout + got.stdout).splitlines():
        if "error:" not in line:  # an error is a sentence on its own line; the columns fit 80
            assert len(line) <= 80, line
