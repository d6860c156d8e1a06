"""The soak run's CI variant (``benchmarks/soak.py --quick``): 300 short pod steps, some failing, in one
run: memory flat, no file descriptor or thread leak, every log line once, every step journaled final."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sim_only

ROOT = Path(__file__).resolve().parents[1]


def test_the_quick_soak_keeps_memory_flat_and_leaks_nothing():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "broken promises: 0" in result.stdout
    assert "log lines: 300 of 300" in result.stdout
