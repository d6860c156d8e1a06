"""The chaos run: ``playbooks/release.yaml`` (``rollback: auto``) across a simulated fleet under faults,
with the fleet process SIGKILLed and resumed, then its promises checked from the sims' own state and
request logs, not from fleet's report alone.

Faults (seeded, so a run is repeatable): on every cluster 5% of requests answered 500/503, 2% 429 with
Retry-After, 1% of responses cut off mid-body (log follows and watches in their first bytes) and every
watch cut after a few seconds; ``--down`` clusters down for the whole run; ``--outage`` clusters down for
``--outage-seconds`` in the middle (chosen among the clusters in flight once a seeded tenth to third of
them have ended, so that the outage cuts releases off mid-step); ``--notready`` tenants whose new version
never becomes ready; bearer tokens that the clusters reject (401) ``--token-ttl`` seconds after they were
issued, which fleet gets from an exec credential plugin (``curl`` against a token endpoint of this
script: half the clusters' plugins say when the token expires, the others do not, so fleet learns it
from the 401); the fleet process SIGKILLed ``--kills`` times at seeded moments, each time followed by
``fleet resume``.

Invariants (any violation is printed and the exit code is 1):

- every reachable cluster ends on the new version, ready (succeeded), or exactly on its previous state
  (rolled back); a cluster down for the whole run was never written to and is reported failed;
- no pod of the run is left behind; no pod step created more pods than it has journaled attempts;
- every started pod's log is complete in the run's log (``--logs``: ``cluster/step: line`` on stderr, every
  process's): each line the container wrote (what the sim's kubelet recorded, outputs markers aside) is
  there, no process shows a line more often than the containers of that step wrote it, and a step whose
  lines one process showed shows exactly the containers' lines;
- the journal has a final outcome for every cluster and no step still ``running``; the last process's
  JSON report agrees with the journal;
- the webhook secret (the release's Slack message) and the bearer tokens appear in no output and not in
  the journal.

Printed: requests made, retries (fleet's own count: requests tried again, tokens refreshed after a 401,
watches and log streams reopened), faults seen by kind (401s of expired tokens included), clusters per
outcome, wall time, peak RSS of the fleet processes, and the violations. The full run is the default;
``--quick`` is the seeded variant CI runs.

    .venv/bin/python benchmarks/chaos.py [--clusters 300] [--concurrency 50] [--seed 7] [--quick]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from fleet.pods.spec import TRANSFER_CONTAINERS
from fleet.sim import Faults, SimFleet

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "playbooks" / "release.yaml"
NAMESPACE = "shop"
OLD, NEW = "1.27", "1.28"
HOOK_TOKEN = "chaos-hook-token-4f1d9e"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: A pod log line in the run's log (``--logs``): ``cluster/step: text``.
LOG_LINE = re.compile(r"^([a-z0-9][a-z0-9.-]*)/([A-Za-z0-9_.-]+): (.*)$")
#: An outputs-protocol line: parsed by fleet, not shown.
MARKER = re.compile(r"^::\{.*\}::$")
#: fleet's INFO lines for a second try: a request retried, a token refreshed, a watch or log stream reopened.
RETRY_LINES = {
    "request retried": re.compile(r"; attempt \d+/\d+ in "),
    "token refreshed after 401": re.compile(r"token rejected \(401\); refreshing it once"),
    "watch resumed": re.compile(r"watch \S+ on \S+ dropped"),
    "log stream reopened": re.compile(r"log stream of \S+ in \S+ broke"),
}


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
    token_ttl: float


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
    parser.add_argument("--token-ttl", type=float, default=60.0, help="seconds a bearer token is accepted")
    parser.add_argument(
        "--quick", action="store_true", help="the CI variant: 24 clusters, 1 kill, shorter outage, 5 s tokens"
    )
    a = parser.parse_args()
    if a.quick:
        return Plan(24, 8, a.seed, 1, 1, 1, 8.0, 2, 5.0)
    return Plan(a.clusters, a.concurrency, a.seed, a.kills, a.down, a.outage, a.outage_seconds, a.notready, a.token_ttl)


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


class _Tokens(http.server.BaseHTTPRequestHandler):
    """``GET /token/<cluster>``: an ExecCredential with a new token the cluster accepts for ``ttl`` seconds;
    for clusters of odd number it says when the token expires."""

    sim: SimFleet
    ttl: float
    issued: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        token = self.sim[name].issue_token(ttl=self.ttl)
        _Tokens.issued.append(token)
        status: dict[str, Any] = {"token": token}
        if int(name.rsplit("-", 1)[-1]) % 2 == 1:
            expires = datetime.now(UTC) + timedelta(seconds=self.ttl)
            status["expirationTimestamp"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status})
        data = body.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _exec_kubeconfigs(sim: SimFleet, directory: Path, endpoint: str) -> dict[str, Path]:
    """Each cluster's kubeconfig with an exec credential plugin instead of the admin token."""
    directory.mkdir(parents=True, exist_ok=True)
    curl = shutil.which("curl")
    paths = {}
    for cluster in sim.clusters:
        url = f"{endpoint}/token/{cluster.name}"
        if curl is not None:
            command, args = curl, ["-sf", "--max-time", "20", url]
        else:  # the same request in Python (slower to start)
            command = sys.executable
            args = [
                "-c",
                "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
                url,
            ]
        config = cluster.kubeconfig()
        config["users"][0]["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": command,
                "args": args,
                "interactiveMode": "Never",
            }
        }
        paths[cluster.name] = directory / f"{cluster.name}.yaml"
        paths[cluster.name].write_text(yaml.safe_dump(config, sort_keys=False))
    return paths


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


def _inventory(sim: SimFleet, path: Path, kubeconfigs: dict[str, Path] | None = None) -> Path:
    doc = yaml.safe_load(sim.inventory_path.read_text())
    for entry in doc["clusters"]:
        kubeconfig = (kubeconfigs or {}).get(entry["name"]) or sim.out_dir / "kubeconfigs" / (entry["name"] + ".yaml")
        entry["connection"]["kubeconfig"] = f"file:{kubeconfig}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _logged(outputs: list[str]) -> list[Counter[tuple[str, str, str]]]:
    """Per fleet process, its pod log lines: (cluster, step, text) -> how often it showed it."""
    return [
        Counter(m.groups() for m in (LOG_LINE.match(line) for line in text.splitlines()) if m is not None)
        for text in outputs
    ]


def _log_violations(
    sim: SimFleet, names: list[str], run_id: str, logged: list[Counter[tuple[str, str, str]]]
) -> tuple[list[str], int]:
    """The log promise, step by step: what the containers wrote against what each process showed."""
    wrote: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for name in names:
        for out in sim[name].container_outputs():
            if out.labels.get("fleet.dev/run-id") != run_id or out.container in TRANSFER_CONTAINERS:
                continue
            step = out.labels.get("fleet.dev/step-id", "?")
            wrote[(name, step)].update(line.rstrip("\r") for line in out.lines if not MARKER.match(line.strip()))
            if out.count != len(out.lines):
                wrote[(name, step)][f"<{out.count - len(out.lines)} lines not kept>"] += 1
    shown: dict[tuple[str, str], list[Counter[str]]] = defaultdict(list)
    for process in logged:
        per: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for (cluster, step, text), n in process.items():
            per[(cluster, step)][text] += n
        for key, lines in per.items():
            shown[key].append(lines)
    problems = []
    for key in sorted(set(wrote) | set(shown)):
        expected, seen = wrote.get(key, Counter()), shown.get(key, [])
        total = sum(seen, Counter())
        where = f"{key[0]}/{key[1]}"
        if expected - total:
            problems.append(f"{where}: lines the containers wrote missing from the run's log: {dict(expected - total)}")
        for lines in seen:
            if lines - expected:
                problems.append(f"{where}: lines shown more often than written: {dict(lines - expected)}")
        if len(seen) == 1 and seen[0] != expected:
            problems.append(f"{where}: one process showed {dict(seen[0])}, the containers wrote {dict(expected)}")
    return problems, sum(sum(c.values()) for c in wrote.values())


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
        _Tokens.sim, _Tokens.ttl = sim, plan.token_ttl
        tokens = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tokens)
        threading.Thread(target=tokens.serve_forever, daemon=True).start()
        endpoint = f"http://127.0.0.1:{tokens.server_address[1]}"
        baseline = str(_inventory(sim, home / "baseline-inventory.yaml"))
        inventory = str(
            _inventory(sim, home / "inventory.yaml", _exec_kubeconfigs(sim, home / "kubeconfigs", endpoint))
        )
        base = [sys.executable, "-m", "fleet"]
        common = ["-c", str(plan.concurrency), "--set", f"namespace={NAMESPACE}", "--set", "wait=PT1M"]
        first = subprocess.run(
            [*base, "run", str(RELEASE), "-i", baseline, *common, "--set", f"version={OLD}", "-q"],
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

        outage: list[str] = []
        # Its own draws: this thread's timing must not shift the kills' moments.
        chooser = random.Random(plan.seed + 1)

        def outage_window() -> None:
            target = chooser.uniform(0.1, 0.3) * len(names)
            deadline = time.monotonic() + 1200
            while time.monotonic() < deadline:
                ended = _rows(journal, "SELECT COUNT(*) FROM clusters WHERE ended IS NOT NULL")
                if ended and ended[0][0] >= target:
                    break
                time.sleep(0.1)
            running = _rows(journal, "SELECT cluster FROM clusters WHERE outcome='running'")
            flying = sorted(r[0] for r in running if r[0] not in down and r[0] not in notready)
            outage.extend(chooser.sample(flying, min(plan.outage, len(flying))))
            for name in outage:
                sim[name].set_faults(Faults(down=True))
            time.sleep(plan.outage_seconds)
            for name in outage:
                sim[name].set_faults(noisy)

        threading.Thread(target=outage_window, daemon=True).start()

        command = [*base, "-v", "run", str(RELEASE), "-i", inventory, *common, "--set", f"version={NEW}"]
        command += ["--set", "slackWebhook=env:SLACK_WEBHOOK_URL", "-o", "json", "--logs"]
        kills = 0
        run_id = None
        report_text = ""
        while True:
            # Into files, not pipes: with -v and --logs a process writes more than a pipe holds before the
            # script reads it (it only watches the journal meanwhile), and would block on a full pipe.
            number = len(outputs) // 2
            out_path, err_path = home / f"fleet-{number}.stdout", home / f"fleet-{number}.stderr"
            with out_path.open("w") as out, err_path.open("w") as err:
                process = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env)
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
            process.wait(timeout=1800)
            stdout, stderr = out_path.read_text(), err_path.read_text()
            outputs += [stdout, stderr]
            if run_id is None:
                ids = _rows(journal, "SELECT id FROM runs")
                run_id = str(ids[0][0]) if ids else None
            if process.returncode == -signal.SIGKILL and run_id is not None:
                command = [*base, "-v", "resume", run_id, "-o", "json", "--logs"]
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
        journaled = journal.read_bytes()
        if any(HOOK_TOKEN in text for text in outputs) or HOOK_TOKEN.encode() in journaled:
            violations.append("the webhook secret appears in fleet's output or journal")
        issued = list(_Tokens.issued)
        leaked = [t for t in issued if t.encode() in journaled or any(t in text for text in outputs)]
        if leaked:
            violations.append(f"{len(leaked)} bearer token(s) appear in fleet's output or journal")
        if run_id is not None:
            problems, written = _log_violations(sim, names, run_id, _logged(outputs[1::2]))
            violations += problems
        else:
            written = 0
        if len(_Hook.messages) != 1:
            violations.append(f"{len(_Hook.messages)} Slack message(s), expected 1")

    faults = Counter(f for records in requests.values() for r in records for f in r.faults)
    faults["expired token (401)"] = sum(1 for records in requests.values() for r in records if r.status == 401)
    retries = {what: sum(len(pattern.findall(text)) for text in outputs[1::2]) for what, pattern in RETRY_LINES.items()}
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"chaos run: {plan.clusters} clusters, concurrency {plan.concurrency}, seed {plan.seed}")
    print(f"  down all run: {len(down)}, outage {plan.outage_seconds:g} s: {len(outage)}, not ready: {len(notready)}")
    print(f"  the outage's clusters: {', '.join(f'{n} ({outcomes.get(n)})' for n in outage)}")
    print(f"  fleet processes: {kills + 1} ({kills} SIGKILLed and resumed)")
    print(f"  requests: {sum(len(r) for r in requests.values())}")
    print(f"  retries: {sum(retries.values())} {retries}")
    print(f"  bearer tokens issued ({plan.token_ttl:g} s each): {len(issued)}")
    print(f"  pod log lines the containers wrote: {written}")
    print(f"  faults seen: {dict(sorted(faults.items()))}")
    print(f"  clusters per outcome: {dict(sorted(Counter(outcomes.values()).items()))}")
    print(f"  wall time: {wall:.1f} s; peak RSS of a fleet process: {peak:.0f} MB")
    print(f"  journal, fleet's outputs, kubeconfigs: {home}")
    print(f"  violations: {len(violations)}")
    for violation in violations:
        print(f"    - {violation}")
    hook.shutdown()
    tokens.shutdown()
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
