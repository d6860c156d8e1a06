"""What the fan-out commands say when ``--limit``, ``--tenant`` or ``--select`` keep no cluster, or do
not parse: through the real CLI, before any cluster is contacted."""

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.sim_only


def fleet_get_ns(inventory, *selection):
    # Wide, so that Rich does not wrap the message (the tests read its text, not its layout).
    env = {**os.environ, "COLUMNS": "400"}
    args = [sys.executable, "-m", "fleet", "get", "ns", "-i", str(inventory), *selection]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (("--limit", "sim-99"), "--limit sim-99: no cluster named sim-99 in {inv}"),
        (("--limit", "sim-*,!sim-*"), "--limit sim-*,!sim-*: every cluster it names is excluded in {inv}"),
        (
            ("--tenant", "acme"),
            "--tenant acme: no cluster of tenant acme (the tenants: tenant-0, tenant-1, tenant-2) in {inv}",
        ),
        (("--select", "tier=platinum"), "--select tier=platinum: no cluster has labels that match in {inv}"),
        (
            ("--limit", "sim-0", "--tenant", "tenant-1"),
            "no cluster in {inv} matches --limit sim-0 and --tenant tenant-1 together",
        ),
    ],
)
def test_a_selection_that_keeps_no_cluster_names_its_flag(sim, selection, message):
    start = time.time()
    result = fleet_get_ns(sim.inventory_path, *selection)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == f"error: {message.format(inv=sim.inventory_path)}\n"
    assert not [r for c in sim for r in c.requests() if r.time >= start]


@pytest.mark.parametrize(("flag", "field"), [("--select", "--select"), ("-l", "--selector")])
def test_a_selector_that_does_not_parse_is_shown_once_with_a_caret(sim, flag, field):
    result = fleet_get_ns(sim.inventory_path, flag, "tier in")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == (
        f"error: {field}: invalid label selector at character 8: expected '(', found the end\n  tier in\n         ^\n"
    )
