"""kubectl's imperative generators, unchanged, against the cluster under test: they send protobuf bodies
(``application/vnd.kubernetes.protobuf``); and ``kubectl drain`` cordons a node and evicts its pods (v1.32
sends the evictions as JSON; protobuf evictions are in ``test_protobuf.py``)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from fleet.sim import SimFleet
from fleet.sim.protobuf import MEDIA_TYPE
from tests.sim.conftest import Kubectl, kubectl_runner

# (kubectl create arguments, {JSON path: expected value}) for an object in the test's namespace.
GENERATORS = [
    pytest.param(
        ["configmap", "settings", "--from-literal=mode=fast", "--from-literal=empty="],
        {"data": {"mode": "fast", "empty": ""}},
        id="configmap",
    ),
    pytest.param(
        ["secret", "generic", "creds", "--from-literal=password=hunter2", "--type=example.com/basic"],
        {"data": {"password": base64.b64encode(b"hunter2").decode()}, "type": "example.com/basic"},
        id="secret-generic",
    ),
    pytest.param(["serviceaccount", "robot"], {"metadata.name": "robot"}, id="serviceaccount"),
    pytest.param(
        ["role", "reader", "--verb=get,list", "--resource=pods,deployments.apps", "--resource-name=web"],
        {
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["web"], "verbs": ["get", "list"]},
                {
                    "apiGroups": ["apps"],
                    "resources": ["deployments"],
                    "resourceNames": ["web"],
                    "verbs": ["get", "list"],
                },
            ]
        },
        id="role",
    ),
    pytest.param(
        ["rolebinding", "readers", "--role=reader", "--user=alice", "--serviceaccount={ns}:robot"],
        {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
                {"kind": "ServiceAccount", "name": "robot", "namespace": "{ns}"},
            ],
        },
        id="rolebinding",
    ),
    pytest.param(
        ["deployment", "web", "--image=nginx:1.27", "--replicas=0", "--port=8080"],
        {
            "spec.replicas": 0,
            "spec.selector": {"matchLabels": {"app": "web"}},
            "spec.template.metadata.labels": {"app": "web"},
            "spec.template.spec.containers[0].image": "nginx:1.27",
            "spec.template.spec.containers[0].ports": [{"containerPort": 8080}],
        },
        id="deployment",
    ),
    pytest.param(
        ["job", "once", "--image=busybox:1.36", "--", "echo", "hello"],
        {
            "spec.template.spec.containers[0].image": "busybox:1.36",
            "spec.template.spec.containers[0].command": ["echo", "hello"],
            "spec.template.spec.restartPolicy": "Never",
        },
        id="job",
    ),
    pytest.param(
        ["cronjob", "tick", "--image=busybox:1.36", "--schedule=*/5 * * * *", "--", "date"],
        {
            "spec.schedule": "*/5 * * * *",
            "spec.jobTemplate.spec.template.spec.containers[0].command": ["date"],
            "spec.jobTemplate.spec.template.spec.restartPolicy": "OnFailure",
        },
        id="cronjob",
    ),
]


def _at(obj: object, path: str) -> object:
    for part in path.replace("]", "").replace("[", ".").split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]  # type: ignore[index]
    return obj


def _sorted(value: object) -> object:
    """Lists of objects compared regardless of order (the API keeps kubectl's order; this is for subjects)."""
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return sorted(value, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _sent_protobuf(cluster, path_end: str) -> None:
    if cluster.sim is None:
        return  # a real cluster: nothing to look at, the read-back is the test
    posts = [r for r in cluster.sim.requests() if r.method == "POST" and r.path.endswith(path_end)]
    assert posts, f"no POST to ...{path_end} seen"
    assert (posts[-1].content_type, posts[-1].status) == (MEDIA_TYPE, 201)


@pytest.mark.parametrize(("args", "expected"), GENERATORS)
def test_kubectl_create_generators_store_what_the_command_line_says(kubectl: Kubectl, cluster, namespace, args,
                                                                    expected):  # fmt: skip
    if args[0] == "rolebinding":
        kubectl("create", "--namespace", namespace, "serviceaccount", "robot")
    args = [a.replace("{ns}", namespace) for a in args]
    kind, name = args[0], args[2] if args[0] == "secret" else args[1]
    kubectl("create", "--namespace", namespace, *args)
    got = json.loads(kubectl("get", "--namespace", namespace, kind, name, "-o", "json").stdout)
    assert got["metadata"]["name"] == name
    assert got["metadata"]["namespace"] == namespace
    for path, value in expected.items():
        if isinstance(value, dict) and path in ("data",):
            assert got[path] == value
            continue
        want = json.loads(json.dumps(value).replace("{ns}", namespace))
        assert _sorted(_at(got, path)) == _sorted(want), path
    _sent_protobuf(cluster, f"/{namespace}/{_plural(kind)}")


def _plural(kind: str) -> str:
    return {"serviceaccount": "serviceaccounts", "cronjob": "cronjobs"}.get(kind, kind + "s")


def test_kubectl_create_namespace(kubectl: Kubectl, cluster, core_v1):
    name = f"t-create-ns-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    try:
        got = core_v1.read_namespace(name)
        assert got.metadata.name == name
        assert got.status.phase == "Active"
        _sent_protobuf(cluster, "/api/v1/namespaces")
    finally:
        core_v1.delete_namespace(name)


@pytest.mark.sim_only
def test_kubectl_drain_evicts_the_pods_and_cordons_the_node(tmp_path):
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        [cluster] = sim.clusters
        kubectl = kubectl_runner(cluster.kubeconfig_path, cluster.name, tmp_path)
        kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3")
        kubectl("wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
        pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        nodes = {p["spec"]["nodeName"] for p in pods}
        node = sorted(nodes)[0]
        on_node = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == node}

        result = kubectl("drain", node, "--ignore-daemonsets", "--timeout=60s", timeout=90)
        assert f"node/{node} drained" in result.stdout

        assert json.loads(kubectl("get", "node", node, "-o", "json").stdout)["spec"]["unschedulable"] is True
        evictions = [r for r in cluster.requests() if r.path.endswith("/eviction")]
        assert {r.path.rsplit("/", 2)[-2] for r in evictions} == on_node
        assert {r.status for r in evictions} == {201}
        kubectl("wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
        deadline = time.monotonic() + 30
        while True:
            pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
            names = {p["metadata"]["name"] for p in pods}
            if (len(pods) == 3 and not names & on_node) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not names & on_node, "evicted pods are still there"
        assert node not in {p["spec"].get("nodeName") for p in pods}, "a pod was scheduled on the cordoned node"

        kubectl("uncordon", node)
        assert not json.loads(kubectl("get", "node", node, "-o", "json").stdout)["spec"].get("unschedulable")


def test_kubectl_create_token_honours_the_duration(kubectl: Kubectl, cluster, namespace):
    kubectl("create", "--namespace", namespace, "serviceaccount", "robot")
    request = json.loads(
        kubectl("create", "--namespace", namespace, "token", "robot", "--duration=20m", "-o", "json").stdout
    )
    assert request["spec"]["expirationSeconds"] == 1200
    assert request["status"]["token"]
    _sent_protobuf(cluster, "/serviceaccounts/robot/token")
