"""Which RBAC verbs a pod step needs, from what it really sends: the example playbook's pod step (an
input file in, an output file out, logs followed) and one whose image cannot be pulled, run on the sim in
fleet's namespace, their requests read from the sim's request log and mapped to (resource, verb) as the
API server's request info does. The base's ``fleet-pod-steps`` Role grants exactly those, plus ``list``
on pods (``fleet resume`` finding a leftover pod, a watch's re-list after 410 Gone), which these runs do
not reach; no ``get`` on pods: a pod step never reads a pod by name."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
import yaml

from fleet.sim.requestlog import RequestRecord
from tests.deploy.conftest import EXAMPLE, KUSTOMIZE, ROOT, fleet_cli
from tests.deploy.test_kustomize import kustomize

pytestmark = pytest.mark.sim_only

NAMESPACE = "fleet"
#: Granted but not reached by a run that succeeds or fails: resume's search, a re-list after 410 Gone.
UNREACHED = {("", "pods", "list")}


Grant = tuple[str, str, str]  # (API group, resource[/subresource], verb)


def rbac_verbs(record: RequestRecord) -> set[Grant]:
    """What the API server authorizes ``record`` as (``/api``, ``/apis``, ``/version``: discovery, none)."""
    parts = record.path.strip("/").split("/")
    if parts[0] not in ("api", "apis") or len(parts) < 3:
        return set()  # /version, /openapi, the discovery documents: open to every authenticated user
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]  # RESOURCE [NAME [SUBRESOURCE]] in a namespace
    if not rest:
        return set()
    resource = "/".join([rest[0], *rest[2:3]])
    named = len(rest) > 1
    query = parse_qs(record.query)
    if record.method == "GET" and not named:
        return {(group, resource, "watch" if query.get("watch", [""])[0] in ("true", "1") else "list")}
    if record.method == "GET" and resource == "pods/exec" and record.status == 101:
        # A WebSocket upgrade is a GET, so `get`; Kubernetes 1.30+ also checks `create`
        # (AuthorizePodWebsocketUpgradeCreatePermission), as for SPDY's POST.
        return {(group, resource, "get"), (group, resource, "create")}
    if record.method == "PATCH" and record.status == 201:
        return {(group, resource, "patch"), (group, resource, "create")}  # a server-side apply that created
    verb = {"GET": "get", "POST": "create", "DELETE": "delete" if named else "deletecollection", "PATCH": "patch"}
    return {(group, resource, verb.get(record.method, "update"))}


def _used(records: list[RequestRecord]) -> set[Grant]:
    used: set[Grant] = set()
    for record in records:
        used |= rbac_verbs(record)
    return used


def _granted(kind: str, name: str) -> set[Grant]:
    objects = yaml.safe_load_all(kustomize("staging"))
    role = next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)
    return {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }


@pytest.fixture
def deployed(kubectl):
    path = str(KUSTOMIZE / "overlays" / "staging")
    kubectl("apply", "-k", path)
    yield
    kubectl("delete", "-k", path, "--wait=false", "--ignore-not-found", check=False)


def _run(sim, cluster, tmp_path, playbook, *extra):
    env = {"FLEET_JOURNAL": str(tmp_path / "journal.sqlite"), "FLEET_ARTIFACTS": str(tmp_path / "artifacts")}
    args = ["run", str(playbook), "-i", str(sim.inventory_path), "--limit", cluster.sim.name, "-o", "json", *extra]
    return fleet_cli(*args, env=env)


def test_a_pod_steps_requests_need_exactly_the_pod_step_role(sim, cluster, deployed, tmp_path):
    failing = tmp_path / "failing.yaml"
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["id"] = "failing-check"
    # An image the sim never pulls: the failure's message carries the pod's Warning events.
    doc["steps"][0].update(image="busybox:fail", waitUntilRunning="PT5S")
    failing.write_text(yaml.safe_dump(doc))

    cluster.sim.clear_requests()
    ok = _run(sim, cluster, tmp_path, EXAMPLE)
    assert ok.returncode == 0, ok.stderr
    failed = _run(sim, cluster, tmp_path, failing)
    assert failed.returncode == 1, failed.stderr
    records = [r for r in cluster.sim.requests() if r.path.startswith(f"/api/v1/namespaces/{NAMESPACE}/")]

    used = _used(records)
    assert used == {
        ("", "pods", "create"),
        ("", "pods", "watch"),
        ("", "pods", "delete"),
        ("", "pods/log", "get"),
        ("", "pods/exec", "get"),
        ("", "pods/exec", "create"),
        ("", "events", "list"),
    }
    exec_requests = [r for r in records if r.path.endswith("/exec")]
    assert {(r.method, r.status) for r in exec_requests} == {("GET", 101)}, "exec is a WebSocket upgrade (GET)"
    logs = [r for r in records if r.path.endswith("/log")]
    assert logs
    assert all(parse_qs(r.query)["follow"] == ["true"] for r in logs), "logs are followed, a GET on pods/log"
    assert _granted("Role", "fleet-pod-steps") == used | UNREACHED


def test_a_release_run_needs_only_what_the_operations_cluster_role_grants(sim, cluster, tmp_path):
    """The shipped release playbook (Namespace, ConfigMap and Deployment applied, readiness waits, a pod
    step in its own namespace), run to create and then to update, on one cluster."""
    cluster.sim.clear_requests()
    for version in ("1.27", "1.28"):
        result = _run(sim, cluster, tmp_path, ROOT / "playbooks" / "release.yaml", "--set", f"version={version}")
        assert result.returncode == 0, result.stderr
    used = _used(cluster.sim.requests())
    missing = used - _granted("ClusterRole", "fleet-operations")
    assert missing == set()
    assert {("", "namespaces", "create"), ("apps", "deployments", "patch"), ("", "pods/exec", "create")} <= used
