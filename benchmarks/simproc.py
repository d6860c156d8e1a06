"""``fleet sim up`` in a process of its own, for benchmarks that measure another process against it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

READY_MARK = "Ctrl-C stops the fleet."


@contextmanager
def sim_up(clusters: int, out: Path, *, tls: bool = True) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Start ``fleet sim up --clusters N --out OUT``; yield the process and what it printed once it serves
    (every listener bound, every kubeconfig and the inventory written); stop it with Ctrl-C on exit."""
    command = [sys.executable, "-m", "fleet", "sim", "up", "--clusters", str(clusters), "--out", str(out)]
    command.append("--tls" if tls else "--no-tls")
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    assert proc.stdout is not None
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if READY_MARK in line:
                break
        else:
            raise RuntimeError("fleet sim up exited:\n" + "".join(seen))
        yield proc, seen
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        finally:
            proc.stdout.close()
