"""The soak run: many short pod steps (some failing) across a simulated fleet in one ``fleet run``, with
the fleet process sampled from /proc while it runs: resident memory, open file descriptors and threads.

Promises checked (exit 1 on any broken):

- memory stays flat: the resident set at the end (every step ended) is within ``--rss-growth`` (30%) of the one at a
  tenth of the run, after the warm-up;
- nothing leaks: open file descriptors and threads at the end are no more than at a tenth of the run
  (plus a small slack for the thread pool's idle workers);
- logs are complete: every pod's one line is in the run's log (``--logs``) exactly once;
- every step ends: the journal has each cluster x step with a final status, failures only where the
  playbook makes a pod fail.

    .venv/bin/python benchmarks/soak.py [--clusters 100] [--steps 20] [--concurrency 50] [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fleet.sim import SimFleet

#: Every ``FAIL_EVERY``-th pod step exits 1 (``allowFailure``: the cluster goes on).
FAIL_EVERY = 7
THREAD_SLACK = 8


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: int
    threads: int
    done: int  # pod steps ended so far (the journal)


@dataclass
class Samples:
    items: list[Sample] = field(default_factory=list)

    def take(self, pid: int, started: float, journal: Path) -> None:
        done = _ended(journal)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (FileNotFoundError, ProcessLookupError):
            return
        values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if "VmRSS" not in values:  # exited, not reaped yet
            return
        rss = int(values["VmRSS"].split()[0]) / 1024
        self.items.append(Sample(time.monotonic() - started, rss, fds, int(values["Threads"]), done))


def _ended(journal: Path) -> int:
    try:
        conn = sqlite3.connect(journal)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT COUNT(*) FROM steps WHERE ended IS NOT NULL").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _playbook(steps: int) -> str:
    doc = {"id": "soak", "strategy": {"concurrency": 50}, "steps": []}
    for i in range(steps):
        command = f"echo soak-line {{{{ cluster.name }}}} {i}"
        if i % FAIL_EVERY == FAIL_EVERY - 1:
            command += " && exit 1"
        doc["steps"].append(
            {
                "id": f"pod{i}",
                "type": "pod",
                "namespace": "default",
                "image": "busybox:1.36",
                "commands": [command],
                "allowFailure": True,
                "waitUntilCompletion": "PT2M",
            }
        )
    return yaml.safe_dump(doc, sort_keys=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rss-growth", type=float, default=0.30)
    parser.add_argument("--quick", action="store_true", help="the CI variant: 20 clusters x 15 pod steps")
    a = parser.parse_args()
    clusters, steps, concurrency = (20, 15, 10) if a.quick else (a.clusters, a.steps, a.concurrency)
    home = Path(tempfile.mkdtemp(prefix="fleet-soak-"))
    playbook = home / "soak.yaml"
    playbook.write_text(_playbook(steps))
    journal = home / "journal.sqlite"
    env = {**os.environ, "FLEET_JOURNAL": str(journal), "FLEET_ARTIFACTS": str(home / "artifacts")}
    broken: list[str] = []
    with SimFleet(clusters=clusters, tls=True, out_dir=home / "sim") as sim:
        doc = yaml.safe_load(sim.inventory_path.read_text())
        for entry in doc["clusters"]:
            entry["connection"]["kubeconfig"] = f"file:{sim.out_dir / 'kubeconfigs' / (entry['name'] + '.yaml')}"
        inventory = home / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
        command = [sys.executable, "-m", "fleet", "run", str(playbook), "-i", str(inventory)]
        command += ["-c", str(concurrency), "--logs"]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        samples = Samples()
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set() and process.poll() is None:
                samples.take(process.pid, started, journal)
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, stderr = process.communicate(timeout=3600)
        stop.set()
        sampler.join()
        wall = time.monotonic() - started
        names = [c.name for c in sim.clusters]

    total = clusters * steps
    expected_failures = clusters * sum(1 for i in range(steps) if i % FAIL_EVERY == FAIL_EVERY - 1)
    if process.returncode != 0:
        broken.append(f"fleet run exited {process.returncode}: {stderr[-1500:]}")
    lines = re.findall(r"^(\S+)/pod(\d+): soak-line (\S+) (\d+)$", stderr, flags=re.M)
    seen = {(cluster, int(step)) for cluster, step, _, _ in lines}
    if len(lines) != total or len(seen) != total:
        broken.append(f"{len(lines)} log lines ({len(seen)} distinct) for {total} pods")
    conn = sqlite3.connect(journal)
    try:
        final = dict(conn.execute("SELECT status, COUNT(*) FROM steps GROUP BY status").fetchall())
    finally:
        conn.close()
    if final.get("running") or sum(final.values()) < total:
        broken.append(f"journal step statuses {final} for {total} steps")
    if final.get("allowed_failure", 0) != expected_failures:
        broken.append(f"{final.get('allowed_failure', 0)} failed pod steps, the playbook fails {expected_failures}")
    # From a tenth of the pod steps on (imports and the first connections are done) to the first sample with
    # every step ended (later ones see the process shut down: its threads and descriptors go anyway).
    usable = [s for s in samples.items if s.done >= total // 10]
    ended = [s for s in usable if s.done >= total] or usable[-1:]
    usable = usable[: usable.index(ended[0]) + 1] if ended else usable
    if len(usable) < 4:
        broken.append("too few samples of the fleet process")
    else:
        warm = usable[0]
        end = usable[-1]
        peak = max(s.rss_mb for s in samples.items)
        # "start": once the run is under way (the first pod step ended), imports and set-up done.
        start = next((s for s in samples.items if s.done >= 1), samples.items[0])
        if end.rss_mb > warm.rss_mb * (1 + a.rss_growth):
            broken.append(f"RSS grew from {warm.rss_mb:.0f} MB to {end.rss_mb:.0f} MB")
        if end.fds > warm.fds:
            broken.append(f"file descriptors grew from {warm.fds} to {end.fds}")
        if end.threads > warm.threads + THREAD_SLACK:
            broken.append(f"threads grew from {warm.threads} to {end.threads}")
        print(f"soak run: {total} pod steps on {len(names)} clusters, concurrency {concurrency}")
        print(f"  wall time: {wall:.1f} s ({total / wall:.1f} pod steps/s)")
        print(f"  RSS MB: start {start.rss_mb:.0f}, at 10% {warm.rss_mb:.0f}, end {end.rss_mb:.0f}, peak {peak:.0f}")
        print(f"  file descriptors: start {start.fds}, at 10% {warm.fds}, end {end.fds}")
        print(f"  threads: start {start.threads}, at 10% {warm.threads}, end {end.threads}")
        print(f"  log lines: {len(lines)} of {total}; journal: {dict(sorted(final.items()))}")
    print(f"  broken promises: {len(broken)}")
    for item in broken:
        print(f"    - {item}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
