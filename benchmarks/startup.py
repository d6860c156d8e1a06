"""Start-up time of the ``fleet`` command: ``fleet --help``, ``fleet --version`` and ``fleet inventory ls``
(an example inventory, no cluster contacted), each a fresh ``python -m fleet`` process, against a bare
``python -c pass`` measured in the same run (the interpreter's own start-up on this machine, now).

Bytecode is cached as in any installation (``PYTHONDONTWRITEBYTECODE`` is dropped for the child
processes, and a first untimed round writes the ``.pyc`` files). Runs are interleaved (one of each
command per round) so that a burst of load on a shared machine hits every command alike; the figure is
the median wall time of ``--runs`` rounds. Goal: ``fleet --help`` within 0.3 s.

    .venv/bin/python benchmarks/startup.py [--runs 15] [--inventory inventories/examples/tenants.yaml]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 0.3


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall_time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="rounds; the figure is the median (default 15)")
    parser.add_argument(
        "--inventory", default="inventories/examples/tenants.yaml", help="the inventory `fleet inventory ls` reads"
    )
    args = parser.parse_args()

    python = sys.executable
    commands = {
        "python -c pass (baseline)": [python, "-c", "pass"],
        "fleet --help": [python, "-m", "fleet", "--help"],
        "fleet --version": [python, "-m", "fleet", "--version"],
        f"fleet inventory ls -i {args.inventory}": [python, "-m", "fleet", "inventory", "ls", "-i", args.inventory],
    }
    for argv in commands.values():  # warm the file cache and the bytecode; fail early on a broken command
        wall_time(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            times[name].append(wall_time(argv))

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    baseline = medians["python -c pass (baseline)"]
    width = max(len(name) for name in commands)
    print(f"{'command':<{width}}  {'median s':>8}  {'min s':>6}  {'x baseline':>10}   ({args.runs} runs each)")
    for name, median in medians.items():
        print(f"{name:<{width}}  {median:8.3f}  {min(times[name]):6.3f}  {median / baseline:10.1f}")
    help_median = medians["fleet --help"]
    verdict = "met" if help_median <= GOAL_SECONDS else "NOT met"
    print(f"goal fleet --help <= {GOAL_SECONDS} s: {verdict} ({help_median:.3f} s)")


if __name__ == "__main__":
    main()
