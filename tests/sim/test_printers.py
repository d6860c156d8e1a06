"""Server-side printing: the columns ``kubectl get`` shows come from the sim's Tables."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client

from fleet.sim.model import ResourceType
from fleet.sim.printers import crd_columns, human_duration, table

PODS = ResourceType("", "v1", "pods", "Pod", True)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (330, "5m30s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (9 * 3600, "9h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 86400 * 2, "3y2d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_as_kubectl_shows_them(seconds, shown):
    assert human_duration(seconds) == shown


def _pod(status, deleting=False, containers=1):
    meta = {"name": "p", "creationTimestamp": "2020-01-01T00:00:00Z"}
    if deleting:
        meta["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    spec = {"containers": [{"name": f"c{i}"} for i in range(containers)]}
    return {"metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("pod", "ready", "status", "restarts"),
    [
        (_pod({"phase": "Pending"}), "0/1", "Pending", "0"),
        (
            _pod(
                {
                    "phase": "Running",
                    "containerStatuses": [{"ready": True, "restartCount": 2, "state": {"running": {}}}],
                }
            ),
            "1/1",
            "Running",
            "2",
        ),
        (
            _pod(
                {
                    "phase": "Pending",
                    "containerStatuses": [{"ready": False, "state": {"waiting": {"reason": "ErrImagePull"}}}],
                }
            ),
            "0/1",
            "ErrImagePull",
            "0",
        ),
        (
            _pod(
                {
                    "phase": "Succeeded",
                    "containerStatuses": [{"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                }
            ),
            "0/1",
            "Completed",
            "0",
        ),
        (_pod({"phase": "Running"}, deleting=True, containers=2), "0/2", "Terminating", "0"),
        (
            _pod(
                {"phase": "Pending", "initContainerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}
            ),
            "0/1",
            "Init:ImagePullBackOff",
            "0",
        ),
    ],
)
def test_pod_rows(pod, ready, status, restarts):
    doc = table(PODS, [pod], 7)
    names = [c["name"] for c in doc["columnDefinitions"]]
    assert names[:6] == ["Name", "Ready", "Status", "Restarts", "Age", "IP"]
    assert [c["priority"] for c in doc["columnDefinitions"]][5:] == [1, 1, 1, 1]
    [row] = doc["rows"]
    assert row["cells"][:4] == ["p", ready, status, restarts]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert doc["metadata"]["resourceVersion"] == "7"


def test_crd_columns_follow_additional_printer_columns():
    columns = crd_columns(
        [
            {"name": "State", "type": "string", "jsonPath": ".status.state"},
            {"name": "Executors", "type": "integer", "jsonPath": ".spec.executor.instances", "priority": 1},
            {"name": "Started", "type": "date", "jsonPath": ".status.started"},
        ]
    )
    obj = {
        "metadata": {"name": "pi", "creationTimestamp": "2020-01-01T00:00:00Z"},
        "spec": {"executor": {"instances": 3}},
        "status": {"state": "RUNNING", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 90))},
    }
    rt = ResourceType("sparkoperator.k8s.io", "v1beta2", "sparkapplications", "SparkApplication", True)
    doc = table(rt, [obj], 1, columns)
    assert [c["name"] for c in doc["columnDefinitions"]] == ["Name", "State", "Executors", "Started", "Age"]
    cells = doc["rows"][0]["cells"]
    assert cells[:3] == ["pi", "RUNNING", 3]
    assert cells[3] in ("89s", "90s", "91s")
    assert table(rt, [obj], 1, columns, definitions=False)["columnDefinitions"] is None


def _out(kubectl, *args):
    return kubectl(*args).stdout


def _header(output):
    return output.splitlines()[0].split()


def test_kubectl_get_shows_the_api_servers_columns(kubectl, core_v1, apps_v1, namespace):
    core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": "two"}, "data": {"a": "1", "b": "2"}})
    labels = {"app": "web"}
    deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "main", "image": "nginx"}]}},
        },
    }
    apps_v1.create_namespaced_deployment(namespace, deployment)
    _out(kubectl, "-n", namespace, "wait", "--for=condition=Available", "deployment/web", "--timeout=30s")

    assert _header(_out(kubectl, "-n", namespace, "get", "deployments")) == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
    ]
    assert _out(kubectl, "-n", namespace, "get", "deployments").splitlines()[1].split()[:4] == [
        "web",
        "1/1",
        "1",
        "1",
    ]
    pods = _out(kubectl, "-n", namespace, "get", "pods", "-o", "wide")
    assert _header(pods)[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "NODE" in _header(pods)
    [row] = pods.splitlines()[1:]
    assert row.split()[1:3] == ["1/1", "Running"]
    configmaps = _out(kubectl, "-n", namespace, "get", "configmap", "two")
    assert configmaps.splitlines()[1].split()[:2] == ["two", "2"]
    assert _header(_out(kubectl, "get", "namespace", namespace))[:2] == ["NAME", "STATUS"]


@pytest.mark.sim_only
def test_a_watch_for_table_rows_sends_the_columns_once(raw_api, core_v1, namespace):
    start = core_v1.list_namespaced_config_map(namespace).metadata.resource_version
    for name in ("a", "b"):
        core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {"k": name}})
    response = raw_api.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion={start}&timeoutSeconds=1",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    events = [json.loads(line) for line in response.body.splitlines()]
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    first, second = (e["object"] for e in events)
    assert (first["kind"], second["kind"]) == ("Table", "Table")
    assert [c["name"] for c in first["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert second["columnDefinitions"] is None
    assert [r["cells"][:2] for r in (first["rows"][0], second["rows"][0])] == [["a", 1], ["b", 1]]


def test_the_typed_client_reads_a_table(api_client, namespace):
    raw = client.CoreV1Api(api_client).list_namespaced_config_map(
        namespace, _preload_content=False, _headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    doc = json.loads(raw.data)
    assert doc["kind"] == "Table"


def test_kubectl_get_prints_a_crds_additional_printer_columns(kubectl, api_client, namespace):
    group, plural = "printers.fleet.test", "widgets"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Colour", "type": "string", "jsonPath": ".spec.colour", "priority": 1},
                    ],
                }
            ],
        },
    }
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(crd)
    try:
        _out(kubectl, "wait", "--for=condition=Established", f"crd/{plural}.{group}", "--timeout=20s")
        widget = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 3, "colour": "red"},
        }
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(group, "v1", namespace, plural, widget)
        # Fully qualified: other tests' CRDs may serve "widgets" in another group.
        plain = _out(kubectl, "-n", namespace, "get", f"{plural}.{group}")
        assert _header(plain) == ["NAME", "SIZE", "AGE"]
        assert plain.splitlines()[1].split()[:2] == ["w1", "3"]
        wide = _out(kubectl, "-n", namespace, "get", f"{plural}.{group}", "-o", "wide")
        assert _header(wide) == ["NAME", "SIZE", "COLOUR", "AGE"]
        assert wide.splitlines()[1].split()[:3] == ["w1", "3", "red"]
    finally:
        ext.delete_custom_resource_definition(f"{plural}.{group}")


def test_kubectl_reads_a_long_list_in_chunks(kubectl, cluster, core_v1, namespace):
    for name in ("c1", "c2", "c3"):
        core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {}})
    expected = sorted(i.metadata.name for i in core_v1.list_namespaced_config_map(namespace).items)
    table_rows = _out(kubectl, "-n", namespace, "get", "configmaps", "--chunk-size=1").splitlines()[1:]
    assert sorted(row.split()[0] for row in table_rows) == expected
    names = _out(kubectl, "-n", namespace, "get", "configmaps", "--chunk-size=2", "-o", "name").split()
    assert sorted(names) == [f"configmap/{n}" for n in expected]
    if cluster.sim is not None:
        pages = [
            r for r in cluster.sim.requests() if r.path.endswith(f"/{namespace}/configmaps") and "continue=" in r.query
        ]
        assert len(pages) >= len(expected) - 1


JOBS = ResourceType("batch", "v1", "jobs", "Job", True)


@pytest.mark.parametrize(
    ("conditions", "deleting", "status"),
    [
        ([], False, "Running"),
        ([("Suspended", "True")], False, "Suspended"),
        ([("SuccessCriteriaMet", "True"), ("Complete", "True")], False, "Complete"),
        ([("FailureTarget", "True")], False, "FailureTarget"),
        ([("FailureTarget", "True"), ("Failed", "True")], True, "Failed"),
        ([("Suspended", "True")], True, "Terminating"),
        ([("Complete", "False")], False, "Running"),
    ],
)
def test_job_status_column(conditions, deleting, status):
    meta = {"name": "j", "creationTimestamp": "2020-01-01T00:00:00Z"}
    if deleting:
        meta["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    job = {
        "metadata": meta,
        "spec": {"completions": 2},
        "status": {"succeeded": 1, "conditions": [{"type": t, "status": v} for t, v in conditions]},
    }
    [row] = table(JOBS, [job], 1)["rows"]
    assert row["cells"][1:3] == [status, "1/2"]
