"""``deploy/``'s RBAC is least privilege: every shipped playbook is run with ``fleet run`` on sim clusters
as the ``fleet`` ServiceAccount, each through its failure and rollback path too, and every check the API
server would make of those requests (read from the sims' request logs) is compared with the grants the
base binds to that ServiceAccount: nothing fleet sends is missing from them, and nothing they grant is
left unused.

The runs, one scenario per playbook, side by side on their own clusters:

- ``release``: a first release where one tenant cannot become ready (its rollback deletes what the run
  created), then an update where another cannot (its rollback puts the objects back as they were);
- ``promote``: staging, then prod;
- ``rotate-secret`` against OpenBao: one tenant rejects the new value (its rollback: the previous Vault
  version back in its Secret and its readers restarted again), a new one has no Secret yet;
- ``dr-drill``: two tenants, one whose DR smoke test fails (rollback: both regions put back);
- ``gpu-job``: a training pod on the GPU pool, its model registered and announced, and a cluster whose
  pool is busy (its pod cannot be scheduled);
- ``nightly-check`` (the base's own playbook, a pod step in ``fleet``): a run, one whose image cannot be
  pulled (its message carries the pod's events), and one killed while its pod runs and then resumed
  (``fleet resume`` finds the pod by label).

The pod steps in ``fleet`` are the namespace ``Role``'s; everything else is the ClusterRoles'.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.sim import SimFleet
from fleet.sim.cluster import SimConfig
from fleet.sim.faults import Faults
from fleet.sim.requestlog import RequestRecord
from tests.deploy.conftest import EXAMPLE, OVERLAYS, ROOT
from tests.deploy.rbac import (
    SERVICE_ACCOUNT_USER,
    Access,
    Grant,
    NonResource,
    default_non_resource,
    grants,
    requests_of,
)
from tests.deploy.test_kustomize import kustomize
from tests.engine.conftest import Fleet, apps, close, core, report
from tests.engine.test_gpu_job_sim import hold_every_gpu
from tests.engine.test_rotate_secret_sim import _tenant, _wait_available
from tests.http_server import TOKEN, TestServer, serving
from tests.services import OpenBao, openbao

__all__ = ["openbao"]

pytestmark = pytest.mark.sim_only

PLAYBOOKS = ROOT / "playbooks"
#: Where fleet's pod-step Role is bound, and where the base's own playbook runs its pod step.
FLEET_NAMESPACE = "fleet"
#: cluster -> (tenant, region, labels), one group per scenario.
CLUSTERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "rel-0": ("acme", "eu-west-1", {}),
    "rel-1": ("globex", "eu-west-1", {}),
    "rel-2": ("initech", "eu-west-1", {}),
    "rel-3": ("umbrella", "eu-west-1", {}),
    "pro-0": ("acme", "eu-west-1", {"env": "staging"}),
    "pro-1": ("acme", "eu-west-1", {"env": "prod"}),
    "rot-0": ("acme", "eu-west-1", {}),
    "rot-1": ("globex", "eu-west-1", {}),
    "rot-2": ("initech", "eu-west-1", {}),
    "dr-0": ("acme", "eu-west-1", {"env": "prod"}),
    "dr-1": ("acme", "eu-central-1", {"env": "prod"}),
    "dr-2": ("globex", "eu-west-1", {"env": "prod"}),
    "dr-3": ("globex", "eu-central-1", {"env": "prod"}),
    "gpu-0": ("acme", "eu-west-1", {"accelerator": "nvidia"}),
    "gpu-1": ("globex", "eu-west-1", {"accelerator": "nvidia"}),
    "chk-0": ("acme", "eu-west-1", {}),
}
#: The DR scenario's Deployments before the drill: a full primary, a smaller DR ("pilot light").
DR_REPLICAS = {"dr-0": 2, "dr-1": 1, "dr-2": 1, "dr-3": 0}


@pytest.fixture(scope="module")
def rbac_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    out = tmp_path_factory.mktemp("rbac")
    with SimFleet(names=list(CLUSTERS), tls=True, out_dir=out, config=SimConfig(gpu_nodes=1)) as fleet:
        yield fleet


def _inventory(
    sim: SimFleet, path: Path, names: list[str], labels: dict[str, dict[str, str]] | None = None, **extra: Any
) -> Path:
    """The clusters ``names`` (with extra ``labels``), each reached with a kubeconfig of the ``fleet``
    ServiceAccount's token."""
    clusters = []
    for name in names:
        tenant, region, own = CLUSTERS[name]
        kubeconfig = sim[name].write_kubeconfig(
            path.parent / "kubeconfigs" / f"{name}.yaml", token=sim[name].issue_token(user=SERVICE_ACCOUNT_USER)
        )
        clusters.append({
            "name": name, "tenant": tenant, "region": region, "labels": {**own, **(labels or {}).get(name, {})},
            "connection": {"kubeconfig": f"file:{kubeconfig}", "context": name},
        })  # fmt: skip
    path.write_text(yaml.safe_dump({**extra, "clusters": clusters}, sort_keys=False))
    return path


def _outcomes(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert "Traceback" not in result.stderr, result.stderr
    return {c["cluster"]: c["outcome"] for c in report(result)["clusters"]}


# -- the scenarios: each runs its playbook's commands and checks that they took the paths meant ---------


def _release(sim: SimFleet, home: Path, names: list[str], versions: list[str], failing: str) -> None:
    """``release`` once per version, ``failing`` pinned to an image that never pulls in the last one."""
    fleet, release = Fleet(home), str(PLAYBOOKS / "release.yaml")
    for version in versions:
        last = version == versions[-1]
        inv = _inventory(sim, home / f"release-{version}.yaml", names, {failing: {"web-version": f"{version}-fail"}}
                         if last else None)  # fmt: skip
        args = ["-i", str(inv), "--set", f"version={version}", "--set", "wait=PT15S", "-o", "json"]
        result = fleet("run", release, *args)
        assert result.returncode == (1 if last else 0), result.stdout + result.stderr
        assert _outcomes(result) == {n: "rolled_back" if last and n == failing else "succeeded" for n in names}


def _promote(sim: SimFleet, home: Path) -> None:
    fleet = Fleet(home)
    inv = _inventory(sim, home / "promote.yaml", ["pro-0", "pro-1"])
    result = fleet("run", str(PLAYBOOKS / "promote.yaml"), "-i", str(inv), "--set", "version=1.27", "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _outcomes(result) == {"pro-0": "succeeded", "pro-1": "succeeded"}


def _rotate_secret(sim: SimFleet, home: Path, openbao: OpenBao) -> None:
    """rot-0 rotates; rot-1's app rejects the new value (rolled back); rot-2 is a new tenant with no Secret
    yet (the apply creates it) and no readers."""
    fleet, names = Fleet(home), ["rot-0", "rot-1", "rot-2"]
    path, namespace = f"secret/rbac-{uuid.uuid4().hex[:8]}/db", "app"
    mount, inner = path.split("/", 1)
    openbao.client().secrets.kv.v2.create_or_update_secret(path=inner, secret={"password": "old"}, mount_point=mount)
    for name in ("rot-0", "rot-1"):
        _tenant(sim, name, namespace, "old", rejects_new=name == "rot-1")
    core(sim, "rot-2").create_namespace({"metadata": {"name": namespace}})
    for name in ("rot-0", "rot-1"):
        _wait_available(sim, name, namespace)
    vault = {"vault": {"address": openbao.address, "auth": {"method": "token", "token": "env:VAULT_TOKEN"}}}
    inv = _inventory(sim, home / "rotate.yaml", names, secrets=vault)
    result = fleet(
        "run", str(PLAYBOOKS / "rotate-secret.yaml"), "-i", str(inv), "-o", "json",
        "--set", f"path={path}", "--set", f"namespace={namespace}", "--set", "wait=PT8S",
        VAULT_TOKEN=openbao.root_token,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert _outcomes(result) == {"rot-0": "succeeded", "rot-1": "rolled_back", "rot-2": "succeeded"}


def _dr_drill(sim: SimFleet, home: Path, server: TestServer) -> None:
    fleet = Fleet(home)
    for name, replicas in DR_REPLICAS.items():
        core(sim, name).create_namespace({"metadata": {"name": "shop"}})
        template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        spec = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template}
        apps(sim, name).create_namespaced_deployment("shop", {"metadata": {"name": "web"}, "spec": spec})
    server.failing.add("globex")
    inv = _inventory(sim, home / "dr.yaml", list(DR_REPLICAS))
    url = f"{server.url}/tenants/{{tenant}}/"
    result = fleet("run", str(PLAYBOOKS / "dr-drill.yaml"), "-i", str(inv), "--set", f"url={url}", "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert _outcomes(result) == {"dr-0": "succeeded", "dr-1": "succeeded", "dr-2": "succeeded", "dr-3": "rolled_back"}


def _gpu_job(sim: SimFleet, home: Path, server: TestServer) -> None:
    """gpu-0 trains; gpu-1's pool is busy, so its pod cannot be scheduled (the message reads its events)."""
    fleet = Fleet(home)
    hold_every_gpu(sim, "gpu-1")
    inv = _inventory(sim, home / "gpu.yaml", ["gpu-0", "gpu-1"])
    env = {"MODEL_REGISTRY_TOKEN": TOKEN, "SLACK_WEBHOOK_URL": server.webhook}
    result = fleet("run", str(PLAYBOOKS / "gpu-job.yaml"), "-i", str(inv), "--set", f"registry={server.url}",
                   "-o", "json", **env)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert _outcomes(result) == {"gpu-0": "succeeded", "gpu-1": "failed"}
    (busy,) = [c for c in report(result)["clusters"] if c["cluster"] == "gpu-1"]
    assert "FailedScheduling" in busy["error"]


def _wait_for_pod(sim: SimFleet, name: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not core(sim, name).list_namespaced_pod(FLEET_NAMESPACE).items:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the pod step's pod never appeared"
        time.sleep(0.05)


def _nightly_check(sim: SimFleet, home: Path) -> None:
    fleet, cluster = Fleet(home), sim["chk-0"]
    core(sim, "chk-0").create_namespace({"metadata": {"name": FLEET_NAMESPACE}})
    inv = str(_inventory(sim, home / "check.yaml", ["chk-0"]))
    ok = fleet("run", str(EXAMPLE), "-i", inv, "-o", "json")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    failing = home / "nightly-check-unpullable.yaml"
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["steps"][0].update(image="busybox:fail", waitUntilRunning="PT5S")  # an image the sim never pulls
    failing.write_text(yaml.safe_dump(doc))
    failed = fleet("run", str(failing), "-i", inv, "-o", "json")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "busybox:fail" in report(failed)["clusters"][0]["error"]

    # Every exec and log stream of the pod step hangs, so the run is surely killed while its pod runs.
    cluster.set_faults(Faults(stall=True, paths=(f"/api/v1/namespaces/{FLEET_NAMESPACE}/pods/",), methods=("GET",)))
    process = fleet.popen("run", str(EXAMPLE), "-i", inv)
    try:
        _wait_for_pod(sim, "chk-0", process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        cluster.set_faults(Faults())
        close(process)
    ((run_id,),) = fleet.rows("SELECT id FROM runs WHERE status NOT IN ('succeeded', 'failed')")
    resumed = fleet("resume", str(run_id))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert fleet.rows("SELECT status FROM runs WHERE id=?", run_id) == [("succeeded",)]


# -- the comparison -----------------------------------------------------------------------------------


def _run_every_playbook(sim: SimFleet, tmp_path: Path, openbao: OpenBao) -> list[RequestRecord]:
    """Every scenario at once, each on its clusters; the ServiceAccount's requests they made."""
    for cluster in sim:
        cluster.clear_requests()
    with serving() as server:
        scenarios: dict[str, Callable[[Path], None]] = {
            # A tenant that fails its first release: what the run created is deleted.
            "release-first": lambda home: _release(sim, home, ["rel-0", "rel-1"], ["1.27"], failing="rel-1"),
            # A tenant that fails an update: its objects are put back as they were.
            "release-update": lambda home: _release(sim, home, ["rel-2", "rel-3"], ["1.27", "1.28"], failing="rel-3"),
            "promote": lambda home: _promote(sim, home),
            "rotate-secret": lambda home: _rotate_secret(sim, home, openbao),
            "dr-drill": lambda home: _dr_drill(sim, home, server),
            "gpu-job": lambda home: _gpu_job(sim, home, server),
            "nightly-check": lambda home: _nightly_check(sim, home),
        }
        with ThreadPoolExecutor(max_workers=len(scenarios), thread_name_prefix="rbac-scenario") as pool:
            futures = {}
            for name, scenario in scenarios.items():
                (tmp_path / name).mkdir()
                futures[name] = pool.submit(scenario, tmp_path / name)
            for future in futures.values():
                future.result()
    return [r for cluster in sim for r in cluster.requests() if r.user == SERVICE_ACCOUNT_USER]


def _attribute(checks: set[Access], granted: list[Grant]) -> dict[Grant, set[Access]]:
    """Each check to the most specific grant that allows it (a Role in its namespace before a ClusterRole)."""
    used: dict[Grant, set[Access]] = {g: set() for g in granted}
    for check in checks:
        grant = next((g for g in granted if g.allows(check)), None)
        if grant is not None:
            used[grant].add(check)
    return used


def test_the_shipped_playbooks_need_exactly_what_deploy_grants(rbac_sim, tmp_path, openbao):
    records = _run_every_playbook(rbac_sim, tmp_path, openbao)
    checks = requests_of(records)
    resources = {c for c in checks if isinstance(c, Access)}
    non_resources = {c for c in checks if isinstance(c, NonResource)}
    assert {("", "pods/exec", "create"), ("apps", "deployments", "update"), ("apps", "deployments", "delete")} <= {
        c.rule for c in resources
    }, "the runs took their pod steps and both kinds of rollback"
    # What the mapping relies on: an exec is a WebSocket upgrade (a GET), never SPDY's POST; pods/log is
    # read by followed GETs only.
    execs = [r for r in records if r.path.endswith("/exec")]
    assert {r.method for r in execs} == {"GET"}
    assert 101 in {r.status for r in execs}
    logs = [r for r in records if r.path.endswith("/log")]
    assert logs
    assert all("follow=true" in r.query for r in logs)

    # Discovery and /version: Kubernetes' default roles already let every authenticated user read them.
    assert sorted(str(c) for c in non_resources if not default_non_resource(c)) == []
    for overlay in OVERLAYS:
        granted = grants(list(yaml.safe_load_all(kustomize(overlay))))
        used = _attribute(resources, granted)
        missing = sorted(str(c) for c in resources if not any(g.allows(c) for g in granted))
        unused = sorted(
            f"{g}: {verb} {resource} (apiGroup {group or 'core'!r})"
            for g in granted
            for group, resource, verb in g.rules
            if not any(c.rule == (group, resource, verb) for c in used[g])
        )
        assert (missing, unused) == ([], []), f"overlays/{overlay}: not granted {missing}; granted, never used {unused}"
