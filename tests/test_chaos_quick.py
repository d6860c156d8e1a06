"""The chaos run's seeded CI variant (``benchmarks/chaos.py --quick``): release.yaml under request faults,
a cluster down, an outage, tenants that never become ready, bearer tokens that expire after 5 s and a
SIGKILL + resume keeps every promise the script checks from the sims, pod logs complete included (it
prints the violations and exits 1 on any)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sim_only

ROOT = Path(__file__).resolve().parents[1]


def test_the_quick_chaos_run_keeps_every_promise():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--quick", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "violations: 0" in result.stdout
    assert "1 SIGKILLed and resumed" in result.stdout
    # Tokens expired under the run (the clusters answered 401) and fleet refreshed them.
    assert re.search(r"'expired token \(401\)': [1-9]", result.stdout), result.stdout
    assert re.search(r"'token refreshed after 401': [1-9]", result.stdout), result.stdout
