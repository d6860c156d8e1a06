"""Start-up time and memory of ``fleet sim up`` for 100 and 1,000 clusters (goal: 1,000 in < 10 s, < 500 MB).

Each size runs ``fleet sim up`` as its own process and measures the time until it prints that it is
serving (every listener bound, every kubeconfig and the inventory written), then its resident memory
(VmRSS) once it has settled, then one request to its last cluster. The baseline is the same process
with 1 cluster: the ratio says what a cluster costs on top of the interpreter and the libraries.

    .venv/bin/python benchmarks/sim_startup.py [--sizes 1 100 1000] [--tls/--no-tls]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import kubernetes
from simproc import sim_up

SETTLE_SECONDS = 2.0
GOAL_SECONDS = 10.0
GOAL_MB = 500.0


@dataclass
class Startup:
    clusters: int
    seconds: float  # process start to serving (interpreter, imports, fleet start)
    fleet_seconds: float  # what `fleet sim up` reports: SimFleet start alone
    rss_mb: float
    first_request_ms: float


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _list_namespaces(kubeconfig: Path) -> float:
    """Milliseconds for one list of namespaces on a new connection."""
    api_client = kubernetes.config.new_client_from_config(str(kubeconfig))
    with api_client:
        t0 = time.perf_counter()
        kubernetes.client.CoreV1Api(api_client).list_namespace(_preload_content=False).read()
        return (time.perf_counter() - t0) * 1000


def _first_request_ms(out: Path, clusters: int) -> float:
    # The client builds its request validators on its first call: pay that on the first cluster, then
    # time the last cluster's first request (a new connection and TLS handshake).
    _list_namespaces(out / "kubeconfigs" / "sim-0.yaml")
    return _list_namespaces(out / "kubeconfigs" / f"sim-{clusters - 1}.yaml")


def measure(clusters: int, tls: bool) -> Startup:
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        out = Path(tmp) / "fleet"
        started = time.perf_counter()
        with sim_up(clusters, out, tls=tls) as (proc, seen):
            seconds = time.perf_counter() - started
            reported = re.search(r"clusters up in ([0-9.]+) s", "".join(seen))
            fleet_seconds = float(reported.group(1)) if reported else float("nan")
            # Settle: let the controllers and kubelets finish their first round before reading memory.
            time.sleep(SETTLE_SECONDS)
            rss = _rss_mb(proc.pid)
            first_ms = _first_request_ms(out, clusters)
        return Startup(clusters, seconds, fleet_seconds, rss, first_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    results = [measure(n, args.tls) for n in args.sizes]
    base = results[0]
    mode = "TLS" if args.tls else "plain HTTP"
    print(f"fleet sim up ({mode}), {os.cpu_count()} CPUs, baseline {base.clusters} cluster(s)")
    header = ("clusters", "process s", "fleet s", "RSS MB", "MB/cluster", "1st req ms", "fleet s ratio")
    print("".join(f"{h:>14}" for h in header))
    for r in results:
        extra = r.clusters - base.clusters
        per_cluster = (r.rss_mb - base.rss_mb) / extra if extra else 0.0
        ratio = r.fleet_seconds / base.fleet_seconds if base.fleet_seconds else float("nan")
        row = (r.clusters, f"{r.seconds:.2f}", f"{r.fleet_seconds:.2f}", f"{r.rss_mb:.0f}", f"{per_cluster:.3f}")
        row += (f"{r.first_request_ms:.1f}", f"{ratio:.1f}x")
        print("".join(f"{v:>14}" for v in row))
    biggest = results[-1]
    if biggest.clusters >= 1000:
        ok = biggest.seconds < GOAL_SECONDS and biggest.rss_mb < GOAL_MB
        verdict = "meets" if ok else "MISSES"
        print(f"{verdict} the goal for {biggest.clusters} clusters: < {GOAL_SECONDS:.0f} s and < {GOAL_MB:.0f} MB")


if __name__ == "__main__":
    main()
