"""The serve benchmark's CI variant (``benchmarks/serve.py --quick``): a burst of 40 deliveries, half of
them repeating an event id, starts exactly 20 runs (counted in the journal), every one succeeds, every
delivery is answered 202 with its event's run id (the script prints the violations and exits 1 on any)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sim_only

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_serve_burst_starts_one_run_per_event():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "serve.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "violations: 0" in result.stdout
    assert "runs started (journal): 20; deliveries recorded: 20" in result.stdout
    assert "p99" in result.stdout
