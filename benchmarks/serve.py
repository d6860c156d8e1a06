"""``fleet serve`` under a burst of webhook deliveries: 200 at once, of which 100 repeat an event id
already in the burst (a sender's retries). It must start exactly 100 runs (counted in the journal) and
stay responsive while they are accepted and run.

The sim (``fleet sim up``) and the server (``fleet serve --port 0``, local launcher, journal on) each run
in a process of their own; this script is the senders: httpx on trio, one connection per delivery. The
playbook applies one ConfigMap on each of the sim's clusters. Measured:

- the POST's latency (send to answer), p50 and p99;
- the baseline, in the same invocation: ``GET /healthz`` (no authentication, no journal) sent at the same
  moments as the burst, its p50 and p99 under the same load; and its p50 with the server idle;
- the time until every run ended, and that every answer was 202, every duplicate answered with its
  event's run id, the journal holds 100 runs (all succeeded) and 100 deliveries.

    .venv/bin/python benchmarks/serve.py [--deliveries 200] [--clusters 3] [--seed 1] [--quick]

Exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio
from simproc import sim_up

TOKEN = "benchmark-serve-token-5b0e"
STARTUP = 60.0
RUNS_DEADLINE = 300.0
PLAYBOOK = """
id: bench
inputs:
  - {id: event, type: STRING, required: true}
steps:
  - id: config
    type: apply
    namespace: default
    manifest:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "bench-{{ inputs.event }}"}
      data: {event: "{{ inputs.event }}"}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(home: Path, inventory: Path) -> tuple[subprocess.Popen[bytes], str]:
    playbooks = home / "playbooks"
    playbooks.mkdir()
    (playbooks / "bench.yaml").write_text(PLAYBOOK)
    env = {
        **os.environ,
        "FLEET_JOURNAL": str(home / "journal.sqlite"),
        "FLEET_ARTIFACTS": str(home / "artifacts"),
        "SERVE_BENCH_TOKEN": TOKEN,
    }
    command = [
        sys.executable, "-m", "fleet", "serve", "--port", "0", "--playbooks", str(playbooks), "-i", str(inventory),
        "--token-ref", "env:SERVE_BENCH_TOKEN",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if select.select([proc.stderr], [], [], 0.1)[0]:
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                raise RuntimeError("fleet serve exited:\n" + seen.decode())
            seen += chunk
            found = re.search(rb"serving on (http\S+)", seen)
            if found:
                return proc, found.group(1).decode()
    proc.kill()
    raise RuntimeError(f"fleet serve printed no URL in {STARTUP:.0f}s:\n{seen.decode()}")


async def burst(url: str, deliveries: int, seed: int) -> dict[str, object]:
    events = [f"event-{i:04d}" for i in range(deliveries // 2)]
    order = events + events  # each event delivered twice: 100 originals, 100 duplicates
    random.Random(seed).shuffle(order)
    limits = httpx.Limits(max_connections=2 * deliveries + 10, max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answers: list[tuple[str, int, str, float]] = []
    health: list[float] = []
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        idle = []
        for _ in range(20):
            t0 = time.perf_counter()
            (await client.get("/healthz")).raise_for_status()
            idle.append(time.perf_counter() - t0)
        go = trio.Event()

        async def deliver(event: str) -> None:
            body = json.dumps({"inputs": {"event": event}}).encode()
            await go.wait()
            t0 = time.perf_counter()
            answer = await client.post(
                "/v1/playbooks/bench/runs", content=body, headers={**headers, "X-GitHub-Delivery": event}
            )
            answers.append((event, answer.status_code, answer.json().get("run_id", ""), time.perf_counter() - t0))

        async def healthz() -> None:
            await go.wait()
            t0 = time.perf_counter()
            (await client.get("/healthz")).raise_for_status()
            health.append(time.perf_counter() - t0)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for event in order:
                nursery.start_soon(deliver, event)
                nursery.start_soon(healthz)
            await trio.sleep(0.2)  # every sender waiting: they go at once
            started = time.perf_counter()
            go.set()
        accepted = time.perf_counter() - started
        with trio.fail_after(RUNS_DEADLINE):
            while True:
                runs = (await client.get("/v1/runs", params={"limit": 1000}, headers=headers)).json()["runs"]
                if runs and all(r["status"] not in ("queued", "running") for r in runs):
                    break
                await trio.sleep(0.25)
        ended = time.perf_counter() - started
    return {"answers": answers, "health": health, "idle": idle, "accepted": accepted, "ended": ended}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=200, help="deliveries in the burst (half are duplicates)")
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the CI variant: 40 deliveries on 2 clusters")
    a = parser.parse_args()
    deliveries, clusters = (40, 2) if a.quick else (a.deliveries, a.clusters)
    with tempfile.TemporaryDirectory(prefix="fleet-bench-serve-") as tmp:
        home = Path(tmp)
        with sim_up(clusters, home / "sim"):
            server, url = start_server(home, home / "sim" / "inventory.yaml")
            try:
                got = trio.run(burst, url, deliveries, a.seed)
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=60)
                finally:
                    assert server.stderr is not None
                    server.stderr.close()
        conn = sqlite3.connect(home / "journal.sqlite")
        try:
            runs = conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
            recorded = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
            cluster_rows = conn.execute("SELECT COUNT(*) FROM clusters WHERE outcome='succeeded'").fetchone()[0]
        finally:
            conn.close()
    answers = got["answers"]
    assert isinstance(answers, list)
    posts = [latency for _, _, _, latency in answers]
    health, idle = got["health"], got["idle"]
    assert isinstance(health, list)
    assert isinstance(idle, list)
    by_event: dict[str, set[str]] = {}
    for event, _, run_id, _ in answers:
        by_event.setdefault(event, set()).add(run_id)
    expected = deliveries // 2
    started = sum(n for _, n in runs)
    problems = []
    if sorted({status for _, status, _, _ in answers}) != [202]:
        problems.append(f"answers other than 202: {sorted({s for _, s, _, _ in answers})}")
    if any(len(ids) != 1 for ids in by_event.values()):
        problems.append("an event was answered with two run ids")
    if started != expected:
        problems.append(f"{started} runs started, not {expected}")
    if recorded != expected:
        problems.append(f"{recorded} deliveries recorded, not {expected}")
    if dict(runs).get("succeeded") != expected or cluster_rows != expected * clusters:
        problems.append(f"runs by status {dict(runs)}, {cluster_rows} cluster rows succeeded")
    p50, p99 = percentile(posts, 0.5), percentile(posts, 0.99)
    h50, h99 = percentile(health, 0.5), percentile(health, 0.99)
    print(f"fleet serve: {deliveries} deliveries at once ({expected} events, each twice) on {clusters} sim clusters")
    print(f"  POST /v1/playbooks/bench/runs   p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms")
    print(f"  GET /healthz in the same burst  p50 {h50 * 1000:7.1f} ms   p99 {h99 * 1000:7.1f} ms (baseline)")
    print(f"  GET /healthz, server idle       p50 {percentile(idle, 0.5) * 1000:7.1f} ms")
    print(f"  ratio POST / healthz in the burst: p50 {p50 / h50:.2f}, p99 {p99 / h99:.2f}")
    print(f"  all {deliveries} answered in {got['accepted']:.2f} s; the runs ended {got['ended']:.2f} s after it")
    print(f"  runs started (journal): {started}; deliveries recorded: {recorded}; by status: {dict(runs)}")
    for problem in problems:
        print(f"  VIOLATION: {problem}")
    print(f"violations: {len(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
