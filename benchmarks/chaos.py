"""The chaos run: ``playbooks/release.yaml`` (``rollback: auto``) across a simulated fleet under faults,
with the fleet process SIGKILLed and resumed, then its promises checked from the sims' own state and
request logs, not from fleet's report alone.

Faults (seeded, so a run is repeatable): on every cluster 5% of requests answered 500/503, 2% 429 with
Retry-After, 1% of responses cut off mid-body (log streams and exec included) and every watch cut after a
few seconds; ``--down`` clusters down for the whole run; ``--outage`` clusters down for
``--outage-seconds`` in the middle; ``--notready`` tenants whose new version never becomes ready; the
fleet process SIGKILLed ``--kills`` times at seeded moments, each time followed by ``fleet resume``.

Invariants (any violation is printed and the exit code is 1):

- every reachable cluster ends on the new version, ready (succeeded), or exactly on its previous state
  (rolled back); a cluster down for the whole run was never written to and is reported failed;
- no pod of the run is left behind; no pod step created more pods than it has journaled attempts;
- the journal has a final outcome for every cluster and no step still ``running``; the last process's
  JSON report agrees with the journal;
- the webhook secret (the release's Slack message) appears in no output and not in the journal.

Printed: requests made, faults seen by kind, clusters per outcome, wall time, peak RSS of the fleet
processes, and the violations. The full run is the default; ``--quick`` is the seeded variant CI runs.

    .venv/bin/python benchmarks/chaos.py [--clusters 300] [--concurrency 50] [--seed 7] [--quick]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from fleet.sim import Faults, SimFleet

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "playbooks" / "release.yaml"
NAMESPACE = "shop"
OLD, NEW = "1.27", "1.28"
HOOK_TOKEN = "chaos-hook-token-4f1d9e"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Plan:
    clusters: int
    concurrency: int
    seed: int
    kills: int
    down: int
    outage: int
    outage_seconds: float
    notready: int


def _args() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--down", type=int, default=2)
    parser.add_argument("--outage", type=int, default=3)
    parser.add_argument("--outage-seconds", type=float, default=30.0)
    parser.add_argument("--notready", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="the CI variant: 24 clusters, 1 kill, shorter outage")
    a = parser.parse_args()
    if a.quick:
        return Plan(24, 8, a.seed, 1, 1, 1, 8.0, 2)
    return Plan(a.clusters, a.concurrency, a.seed, a.kills, a.down, a.outage, a.outage_seconds, a.notready)


class _Hook(http.server.BaseHTTPRequestHandler):
    messages: list[Any] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        _Hook.messages.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def _apps(sim: SimFleet, name: str) -> kubernetes.client.AppsV1Api:
    client = kubernetes.config.new_client_from_config(config_file=str(sim[name].kubeconfig_path), context=name)
    return kubernetes.client.AppsV1Api(client)


def _core(sim: SimFleet, name: str) -> kubernetes.client.CoreV1Api:
    client = kubernetes.config.new_client_from_config(config_file=str(sim[name].kubeconfig_path), context=name)
    return kubernetes.client.CoreV1Api(client)


def _state(sim: SimFleet, name: str) -> dict[str, Any]:
    """What the release writes, as the cluster has it (server-set fields left out)."""
    deployment = _apps(sim, name).read_namespaced_deployment("web", NAMESPACE)
    config = _core(sim, name).read_namespaced_config_map("web-config", NAMESPACE) if _has_config(sim, name) else None
    return {
        "template": deployment.spec.template.to_dict(),
        "replicas": deployment.spec.replicas,
        "labels": deployment.metadata.labels,
        "config": config.data if config else None,
    }


def _has_config(sim: SimFleet, name: str) -> bool:
    items = _core(sim, name).list_namespaced_config_map(NAMESPACE).items
    return any(c.metadata.name == "web-config" for c in items)


def _image(sim: SimFleet, name: str) -> tuple[str, int]:
    deployment = _apps(sim, name).read_namespaced_deployment("web", NAMESPACE)
    status = deployment.status
    return deployment.spec.template.spec.containers[0].image, (status.available_replicas or 0)


def _inventory(sim: SimFleet, path: Path) -> Path:
    doc = yaml.safe_load(sim.inventory_path.read_text())
    for entry in doc["clusters"]:
        entry["connection"]["kubeconfig"] = f"file:{sim.out_dir / 'kubeconfigs' / (entry['name'] + '.yaml')}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _rows(journal: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    try:
        conn = sqlite3.connect(journal)
    except sqlite3.Error:
        return []
    try:
        return conn.execute(query, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def main() -> int:
    plan = _args()
    rng = random.Random(plan.seed)
    home = Path(tempfile.mkdtemp(prefix="fleet-chaos-"))
    journal = home / "journal.sqlite"
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    webhook = f"http://127.0.0.1:{hook.server_address[1]}/hooks/{HOOK_TOKEN}"
    env = {
        **os.environ,
        "FLEET_JOURNAL": str(journal),
        "FLEET_ARTIFACTS": str(home / "artifacts"),
        "SLACK_WEBHOOK_URL": webhook,
        "COLUMNS": "160",
    }
    violations: list[str] = []
    outputs: list[str] = []
    started = time.monotonic()
    with SimFleet(clusters=plan.clusters, tls=True, out_dir=home / "sim", seed=plan.seed) as sim:
        names = [c.name for c in sim.clusters]
        inventory = str(_inventory(sim, home / "inventory.yaml"))
        base = [sys.executable, "-m", "fleet"]
        common = ["-c", str(plan.concurrency), "--set", f"namespace={NAMESPACE}", "--set", "wait=PT1M"]
        first = subprocess.run(
            [*base, "run", str(RELEASE), "-i", inventory, *common, "--set", f"version={OLD}", "-q"],
            capture_output=True,
            text=True,
            env={**env, "FLEET_JOURNAL": str(home / "baseline.sqlite")},
        )
        if first.returncode != 0:
            print(first.stdout + first.stderr, file=sys.stderr)
            return 1
        before = {n: _state(sim, n) for n in names}

        shuffled = rng.sample(names, len(names))
        down = set(shuffled[: plan.down])
        outage = shuffled[plan.down : plan.down + plan.outage]
        notready = set(shuffled[plan.down + plan.outage : plan.down + plan.outage + plan.notready])
        noisy = Faults(error_rate=0.05, throttle_rate=0.02, drop_rate=0.01, drop_watch_after=3.0)
        for name in names:
            sim[name].clear_requests()
            if name in down:
                sim[name].set_faults(Faults(down=True))
            elif name in notready:
                sim[name].set_faults(Faults(**{**noisy.__dict__, "notready": True}))
            else:
                sim[name].set_faults(noisy)

        def outage_window() -> None:
            time.sleep(rng.uniform(2.0, 6.0))
            for name in outage:
                sim[name].set_faults(Faults(down=True))
            time.sleep(plan.outage_seconds)
            for name in outage:
                sim[name].set_faults(noisy)

        threading.Thread(target=outage_window, daemon=True).start()

        command = [*base, "run", str(RELEASE), "-i", inventory, *common, "--set", f"version={NEW}"]
        command += ["--set", "slackWebhook=env:SLACK_WEBHOOK_URL", "-o", "json"]
        kills = 0
        run_id = None
        report_text = ""
        while True:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            if kills < plan.kills:
                # Killed once a seeded share of the clusters has a final outcome.
                target = rng.uniform(0.15, 0.6) * len(names)
                while process.poll() is None:
                    done = _rows(journal, "SELECT COUNT(*) FROM clusters WHERE ended IS NOT NULL")
                    if done and done[0][0] >= target:
                        process.kill()
                        kills += 1
                        break
                    time.sleep(0.1)
            stdout, stderr = process.communicate(timeout=1800)
            outputs += [stdout, stderr]
            if run_id is None:
                ids = _rows(journal, "SELECT id FROM runs")
                run_id = str(ids[0][0]) if ids else None
            if process.returncode == -signal.SIGKILL and run_id is not None:
                command = [*base, "resume", run_id, "-o", "json"]
                continue
            report_text = stdout
            if process.returncode not in (0, 1):
                violations.append(f"the last fleet process exited {process.returncode}: {stderr[-2000:]}")
            break
        wall = time.monotonic() - started

        for name in names:
            sim[name].set_faults(Faults())
        outcomes = dict(_rows(journal, "SELECT cluster, outcome FROM clusters WHERE run_id=?", run_id))
        requests = {n: sim[n].requests() for n in names}
        for name in names:
            outcome = outcomes.get(name)
            if outcome is None:
                violations.append(f"{name}: no outcome in the journal")
                continue
            if name in down:
                writes = [r for r in requests[name] if r.method in WRITES]
                if writes or outcome != "failed":
                    violations.append(f"{name} (down): outcome {outcome}, {len(writes)} write(s)")
                continue
            if outcome == "succeeded":
                image, available = _image(sim, name)
                if image != f"nginx:{NEW}" or available < 1:
                    violations.append(f"{name}: succeeded but runs {image} with {available} available")
            elif outcome == "rolled_back":
                if _state(sim, name) != before[name]:
                    violations.append(f"{name}: rolled back but not to its previous state")
            elif outcome == "failed" and not any(r.method in WRITES for r in requests[name]):
                pass  # failed before writing anything (e.g. unreachable in the outage): as it was
            else:
                error = _rows(journal, "SELECT rollback_error FROM clusters WHERE run_id=? AND cluster=?", run_id, name)
                why = f": {str(error[0][0])[:300]}" if error and error[0][0] else ""
                violations.append(f"{name}: ended {outcome}, neither on {NEW} nor as it was{why}")
            alive = _core(sim, name).list_namespaced_pod(NAMESPACE, label_selector=f"fleet.dev/run-id={run_id}").items
            left = [p for p in alive if not p.metadata.deletion_timestamp]
            if left:
                described = ", ".join(
                    f"{p.metadata.name} ({p.status.phase}, step {p.metadata.labels.get('fleet.dev/step-id')}, "
                    f"attempt {p.metadata.labels.get('fleet.dev/attempt')})"
                    for p in left
                )
                violations.append(f"{name} ({outcome}): pod(s) of the run left behind: {described}")
            posts = [r for r in requests[name] if r.method == "POST" and r.path.endswith("/pods")]
            created = sum(1 for r in posts if r.status < 300)
            attempts = _rows(
                journal, "SELECT COUNT(*) FROM steps WHERE run_id=? AND cluster=? AND type='pod'", run_id, name
            )[0][0]
            if created > attempts:
                violations.append(f"{name}: {created} pods created for {attempts} pod step attempt(s)")
        running = _rows(journal, "SELECT cluster, step FROM steps WHERE run_id=? AND status='running'", run_id)
        if running:
            violations.append(f"steps still running in the journal: {running[:5]}")
        try:
            reported = {c["cluster"]: c["outcome"] for c in json.loads(report_text)["clusters"]}
        except (ValueError, KeyError):
            reported = {}
            violations.append("the last process printed no JSON report")
        if reported and reported != outcomes:
            differ = sorted(n for n in names if reported.get(n) != outcomes.get(n))
            violations.append(f"the JSON report and the journal disagree on {differ[:5]}")
        if any(HOOK_TOKEN in text for text in outputs) or HOOK_TOKEN.encode() in journal.read_bytes():
            violations.append("the webhook secret appears in fleet's output or journal")
        if len(_Hook.messages) != 1:
            violations.append(f"{len(_Hook.messages)} Slack message(s), expected 1")

    faults = Counter(f for records in requests.values() for r in records for f in r.faults)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"chaos run: {plan.clusters} clusters, concurrency {plan.concurrency}, seed {plan.seed}")
    print(f"  down all run: {len(down)}, outage {plan.outage_seconds:g} s: {len(outage)}, not ready: {len(notready)}")
    print(f"  fleet processes: {kills + 1} ({kills} SIGKILLed and resumed)")
    print(f"  requests: {sum(len(r) for r in requests.values())}")
    print(f"  faults seen: {dict(sorted(faults.items()))}")
    print(f"  clusters per outcome: {dict(sorted(Counter(outcomes.values()).items()))}")
    print(f"  wall time: {wall:.1f} s; peak RSS of a fleet process: {peak:.0f} MB")
    print(f"  violations: {len(violations)}")
    for violation in violations:
        print(f"    - {violation}")
    hook.shutdown()
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
