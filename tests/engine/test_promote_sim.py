"""``playbooks/promote.yaml`` on a staging cluster and two prod clusters: prod is promoted only once
staging is ready; a staging that is not ready leaves prod untouched (not one write in its request log)
and the error names the namespace, the Deployment and its pods' states."""

from __future__ import annotations

import pytest

from fleet.sim import SimFleet
from tests.engine.conftest import PLAYBOOKS, apps, core, inventory, report

pytestmark = pytest.mark.sim_only

PROMOTE = str(PLAYBOOKS / "promote.yaml")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ENV = {"sim-0": {"env": "staging"}, "sim-1": {"env": "prod"}, "sim-2": {"env": "prod"}}


def _writes(sim: SimFleet, name: str) -> list[str]:
    return [f"{r.method} {r.path}" for r in sim[name].requests() if r.method in WRITES]


def test_a_staging_that_is_not_ready_is_not_promoted(fleet, tmp_path):
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path / "sim") as sim:
        inv = inventory(sim, tmp_path / "inv.yaml", labels=ENV)
        result = fleet("run", PROMOTE, "-i", str(inv), "--set", "version=1.27-fail", "--set", "wait=PT3S", "-o", "json")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        doc = report(result)
        assert doc["status"] == "stopped"
        outcomes = {c["cluster"]: c["outcome"] for c in doc["clusters"]}
        assert outcomes == {"sim-0": "failed", "sim-1": "not_started", "sim-2": "not_started"}
        staging = next(c for c in doc["clusters"] if c["cluster"] == "sim-0")
        assert staging["failedStep"] == "ready"
        error = staging["error"]
        assert "Deployment web/web on sim-0 has not rolled out 1.27-fail (2/2 replicas updated, 0 available)" in error
        pods = [p.metadata.name for p in core(sim, "sim-0").list_namespaced_pod("web", label_selector="app=web").items]
        assert len(pods) == 2
        for pod in pods:
            assert f"{pod} Pending (web: " in error
        assert "ErrImagePull" in error or "ImagePullBackOff" in error
        for name in ("sim-1", "sim-2"):
            assert _writes(sim, name) == [], name


def test_a_ready_staging_is_promoted_to_prod(fleet, tmp_path):
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path / "sim") as sim:
        inv = inventory(sim, tmp_path / "inv.yaml", labels=ENV)
        result = fleet("run", PROMOTE, "-i", str(inv), "--set", "version=1.27", "-o", "json")
        assert result.returncode == 0, result.stdout + result.stderr
        outcomes = {c["cluster"]: c["outcome"] for c in report(result)["clusters"]}
        assert outcomes == {"sim-0": "succeeded", "sim-1": "succeeded", "sim-2": "succeeded"}
        for name in ENV:
            deployment = apps(sim, name).read_namespaced_deployment("web", "web")
            assert deployment.spec.template.spec.containers[0].image == "nginx:1.27"
            assert deployment.status.ready_replicas == 2


def test_a_failing_new_version_is_not_promoted_while_the_old_one_stays_ready(fleet, tmp_path):
    """Staging on 1.27, then 1.28-fail: the old ReplicaSet's pods stay ready, the rollout does not finish,
    and prod stays on 1.27 (not one write)."""
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path / "sim") as sim:
        inv = str(inventory(sim, tmp_path / "inv.yaml", labels=ENV))
        first = fleet("run", PROMOTE, "-i", inv, "--set", "version=1.27", "-q")
        assert first.returncode == 0, first.stdout + first.stderr
        for name in ("sim-1", "sim-2"):
            sim[name].clear_requests()
        second = fleet("run", PROMOTE, "-i", inv, "--set", "version=1.28-fail", "--set", "wait=PT3S", "-o", "json")
        assert second.returncode == 1, second.stdout + second.stderr
        staging = next(c for c in report(second)["clusters"] if c["cluster"] == "sim-0")
        assert staging["failedStep"] == "ready"
        assert "has not rolled out 1.28-fail" in staging["error"]
        for name in ("sim-1", "sim-2"):
            assert _writes(sim, name) == [], name
            image = apps(sim, name).read_namespaced_deployment("web", "web").spec.template.spec.containers[0].image
            assert image == "nginx:1.27"
