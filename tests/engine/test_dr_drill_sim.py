"""``playbooks/dr-drill.yaml`` on two tenants, each with a primary cluster in eu-west-1 and a DR cluster in
eu-central-1. The smoke test fetches a local HTTP endpoint (the sim's pods are host processes) that stands
for each tenant's DR entry point; while it answers, the test reads both regions from the sim. Every test
ends by comparing each Deployment, read from its sim cluster, with what it was before the drill: a green
drill, a DR smoke test that fails, Ctrl-C in the middle, and SIGKILL in the middle followed by
``fleet resume``."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.sim import SimFleet
from tests.engine.conftest import PLAYBOOKS, Fleet, apps, close, core, inventory, report

pytestmark = pytest.mark.sim_only

DRILL = str(PLAYBOOKS / "dr-drill.yaml")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NAMESPACE, DEPLOYMENT = "shop", "web"
#: cluster -> (tenant, region, replicas before the drill): a full primary, a one-pod DR "pilot light".
CLUSTERS = {
    "sim-0": ("acme", "eu-west-1", 3),
    "sim-1": ("acme", "eu-central-1", 1),
    "sim-2": ("globex", "eu-west-1", 2),
    "sim-3": ("globex", "eu-central-1", 0),
}
PRIMARY = {"acme": "sim-0", "globex": "sim-2"}
DR = {"acme": "sim-1", "globex": "sim-3"}


@dataclass
class Endpoint:
    """The tenants' DR entry points (``/<tenant>/``): 200, or 503 for the tenants in ``failing``. A hit
    records both regions' Deployments as the sim has them at that moment; with ``hold`` set the answer
    waits until ``release`` (so a signal lands while the smoke test is in flight)."""

    sim: SimFleet
    failing: set[str] = field(default_factory=set)
    hold: bool = False
    seen: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    hit: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def answer(self, tenant: str) -> int:
        self.seen[tenant] = {name: _replicas(self.sim, name) for name in (PRIMARY[tenant], DR[tenant])}
        self.hit.set()
        if self.hold:
            self.release.wait(timeout=120)
        return 503 if tenant in self.failing else 200


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[SimFleet, Endpoint]]:
    with SimFleet(clusters=len(CLUSTERS), tls=True, out_dir=tmp_path / "sim") as sim:
        state = Endpoint(sim)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = state.answer(self.path.strip("/"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="dr-endpoint")
        thread.start()
        state.url = f"http://127.0.0.1:{server.server_address[1]}/{{tenant}}/"
        try:
            _deploy(sim)
            yield sim, state
        finally:
            state.release.set()
            server.shutdown()
            server.server_close()
            thread.join()


def _deploy(sim: SimFleet) -> None:
    for name, (_, _, replicas) in CLUSTERS.items():
        core(sim, name).create_namespace({"metadata": {"name": NAMESPACE}})
        apps(sim, name).create_namespaced_deployment(
            NAMESPACE,
            {
                "metadata": {"name": DEPLOYMENT, "labels": {"app": DEPLOYMENT}},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": DEPLOYMENT}},
                    "template": {
                        "metadata": {"labels": {"app": DEPLOYMENT}},
                        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                    },
                },
            },
        )
    for name in CLUSTERS:
        _wait_ready(sim, name)


def _replicas(sim: SimFleet, name: str) -> tuple[int, int]:
    """The Deployment's (desired, ready) replicas."""
    deployment = apps(sim, name).read_namespaced_deployment(DEPLOYMENT, NAMESPACE)
    return deployment.spec.replicas, deployment.status.ready_replicas or 0


def _wait_ready(sim: SimFleet, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (replicas := _replicas(sim, name))[0] != replicas[1]:
        assert time.monotonic() < deadline, f"{name}: {replicas}"
        time.sleep(0.1)


def _state(sim: SimFleet) -> dict[str, dict[str, Any]]:
    """Each Deployment as its cluster has it: what the drill may change and must put back."""
    out = {}
    for name in CLUSTERS:
        _wait_ready(sim, name)
        deployment = apps(sim, name).read_namespaced_deployment(DEPLOYMENT, NAMESPACE)
        out[name] = {
            "replicas": deployment.spec.replicas,
            "ready": deployment.status.ready_replicas or 0,
            "annotations": deployment.metadata.annotations or {},
            "template": deployment.spec.template.to_dict(),
        }
    return out


def _inventory(sim: SimFleet, path: Path) -> Path:
    inventory(sim, path, labels={name: {"env": "prod"} for name in CLUSTERS})
    doc = yaml.safe_load(path.read_text())
    for entry in doc["clusters"]:
        entry["tenant"], entry["region"], _ = CLUSTERS[entry["name"]]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _args(sim: SimFleet, endpoint: Endpoint, tmp_path: Path, *selection: str) -> list[str]:
    inv = str(_inventory(sim, tmp_path / "inv.yaml"))
    return ["run", DRILL, "-i", inv, "--set", f"url={endpoint.url}", *selection]


def _both_regions_seen_failed_over(endpoint: Endpoint, tenant: str) -> None:
    """When the DR entry point was hit, the primary was scaled to 0 and the DR up to the primary's size."""
    primary, dr = PRIMARY[tenant], DR[tenant]
    before = CLUSTERS[primary][2]
    assert endpoint.seen[tenant] == {primary: (0, 0), dr: (before, before)}, endpoint.seen


def test_a_green_drill_fails_over_measures_the_recovery_and_restores_both_regions(fleet, endpoint, tmp_path):
    sim, state = endpoint
    before = _state(sim)
    started = time.monotonic()
    result = fleet(*_args(sim, state, tmp_path), "-o", "json")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert _state(sim) == before
    for tenant in PRIMARY:
        _both_regions_seen_failed_over(state, tenant)

    doc = report(result)
    assert doc["status"] == "succeeded"
    outcomes = {c["cluster"]: c for c in doc["clusters"]}
    for tenant, dr in DR.items():
        smoke = outcomes[dr]["outputs"]["smoke"]
        seconds = float(smoke["vars"]["recoverySeconds"])
        assert 0 < seconds < elapsed, (dr, seconds, elapsed)
        assert smoke["metrics"] == [
            {"name": "dr.recovery_seconds", "type": "timer", "value": seconds, "tags": {"tenant": tenant, "dr": dr}}
        ]


def test_a_failing_smoke_test_fails_the_drill_and_restores_both_regions(fleet, endpoint, tmp_path):
    sim, state = endpoint
    state.failing = {"globex"}
    before = _state(sim)
    result = fleet(*_args(sim, state, tmp_path), "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert _state(sim) == before
    _both_regions_seen_failed_over(state, "globex")

    outcomes = {c["cluster"]: c for c in report(result)["clusters"]}
    assert {name: c["outcome"] for name, c in outcomes.items()} == {
        "sim-0": "succeeded",
        "sim-1": "succeeded",
        "sim-2": "succeeded",
        "sim-3": "rolled_back",
    }
    assert outcomes["sim-3"]["failedStep"] == "smoke"
    assert "smoke test failed" in outcomes["sim-3"]["error"]


def _wait_hit(endpoint: Endpoint, process: Any) -> None:
    if not endpoint.hit.wait(timeout=120):
        process.kill()
        raise AssertionError(f"the smoke test never reached the DR endpoint: {process.communicate()}")


def test_ctrl_c_mid_drill_rolls_both_regions_back(fleet: Fleet, endpoint, tmp_path):
    sim, state = endpoint
    state.hold = True
    before = _state(sim)
    process = fleet.popen(*_args(sim, state, tmp_path))
    try:
        _wait_hit(state, process)
        failed_over = set(state.seen)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        state.release.set()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert _state(sim) == before
    run_id = str(fleet.rows("SELECT id FROM runs")[0][0])
    rows = dict(fleet.rows("SELECT cluster, outcome FROM clusters WHERE run_id=?", run_id))
    for tenant in failed_over:  # rolled back; a DR cluster that had not scaled up yet has nothing to undo
        assert (rows[PRIMARY[tenant]], rows[DR[tenant]]) == ("rolled_back", "rolled_back"), rows
    assert set(rows.values()) <= {"rolled_back", "interrupted"}, rows

    # Nothing is failed over again: a DR cluster resumed after its primary was rolled back fails alone.
    resumed = fleet("resume", run_id)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert _state(sim) == before


def test_a_drill_killed_midway_completes_on_resume_and_restores_both_regions(fleet: Fleet, endpoint, tmp_path):
    sim, state = endpoint
    state.hold = True
    before = _state(sim)
    process = fleet.popen(*_args(sim, state, tmp_path))
    try:
        _wait_hit(state, process)
        process.kill()
        process.wait(timeout=30)
    finally:
        close(process)
    assert process.returncode == -signal.SIGKILL
    tenant = next(iter(state.seen))
    _both_regions_seen_failed_over(state, tenant)
    state.hold = False
    state.release.set()

    run_id = str(fleet.rows("SELECT id FROM runs")[0][0])
    resumed = fleet("resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert fleet.rows("SELECT status FROM runs WHERE id=?", run_id) == [("succeeded",)]
    assert _state(sim) == before
    for dr in DR.values():
        (outputs,) = fleet.rows(
            "SELECT outputs FROM steps WHERE run_id=? AND cluster=? AND step='smoke' AND status='succeeded'", run_id, dr
        )
        assert json.loads(outputs[0])["vars"]["recoverySeconds"] > 0, dr


def test_the_shipped_inventory_pairs_two_tenants_across_the_two_regions(fleet, tmp_path):
    # The inventory's clusters are contexts of ~/.kube/config, which validate reads (never contacting them).
    inventory = yaml.safe_load((PLAYBOOKS.parent / "inventories" / "dr" / "clusters.yaml").read_text())
    names = [c["name"] for c in inventory["clusters"]]
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": f"https://{n}.example.com:6443"}} for n in names],
        "users": [{"name": "me", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "me"}} for n in names],
    }  # fmt: skip
    (tmp_path / "home" / ".kube").mkdir(parents=True)
    (tmp_path / "home" / ".kube" / "config").write_text(yaml.safe_dump(kubeconfig))
    result = fleet("validate", DRILL, "-i", str(PLAYBOOKS.parent / "inventories" / "dr"), HOME=str(tmp_path / "home"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 cluster(s) in 1 wave(s)" in result.stdout + result.stderr


def test_a_cluster_without_its_pair_in_the_other_region_fails_before_any_write(fleet, endpoint, tmp_path):
    sim, state = endpoint
    for name in CLUSTERS:
        sim[name].clear_requests()
    result = fleet(*_args(sim, state, tmp_path, "--limit", "sim-0,sim-3"), "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    outcomes = {c["cluster"]: c for c in report(result)["clusters"]}
    assert {name: (c["outcome"], c["failedStep"]) for name, c in outcomes.items()} == {
        "sim-0": ("failed", "pair"),
        "sim-3": ("failed", "pair"),
    }
    assert "tenant acme has 0 selected cluster(s) in eu-central-1 (none)" in outcomes["sim-0"]["error"]
    for name in CLUSTERS:
        assert [r for r in sim[name].requests() if r.method in WRITES] == [], name
