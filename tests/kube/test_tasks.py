"""The cluster operations as playbook steps: options validated with errors naming the field, and a
release-like sequence of steps on the cluster under test, each step's outputs feeding the next."""

import json

import pytest

from fleet.artifacts import LocalArtifactStore
from fleet.errors import InputError
from fleet.kube.tasks import KubeTaskContext, parse_task, run_kube_task
from tests.kube.manifests import deployment

BAD_OPTIONS = [
    ("unknown operation", "scale", {"kind": "deploy"}, "unknown cluster operation 'scale'"),
    ("two sources", "apply", {"manifest": "a: 1", "file": "x.yaml"}, "exactly one of manifest, file or template"),
    ("no source", "apply", {"namespace": "x"}, "got none"),
    ("unknown option", "apply", {"manifest": "a: 1", "wait": "PT1M"}, "wait"),
    ("bad duration", "apply", {"manifest": "a: 1", "waitUntilReady": "soon"}, "waitUntilReady"),
    ("bad label selector", "get", {"kind": "pods", "labelSelector": "app in (a"}, "labelSelector"),
    ("bad field selector", "get", {"kind": "pods", "fieldSelector": "spec.nodeName"}, "fieldSelector"),
    ("bad fetch type", "get", {"kind": "pods", "fetchType": "ALL"}, "fetchType"),
    ("bad jsonpath", "get", {"kind": "pods", "jsonpath": "$.[["}, "invalid JSONPath"),
    ("patch of the wrong type", "patch", {"kind": "cm", "name": "a", "patch": "data: {}", "patchType": "json"}, "list"),
    ("unknown patch type", "patch", {"kind": "cm", "name": "a", "patch": "a: 1", "patchType": "x"}, "patchType"),
    ("delete without target", "delete", {"kind": "cm"}, "a name or a selector"),
    ("bad propagation", "delete", {"kind": "cm", "name": "a", "propagationPolicy": "Now"}, "propagationPolicy"),
    ("two waits", "wait", {"kind": "cm", "name": "a", "condition": "Ready", "deleted": True}, "wait for one thing"),
    ("jsonpath without value", "wait", {"kind": "cm", "name": "a", "jsonpath": ".data.a"}, "needs the value"),
    ("restart without name", "restart", {"kind": "deploy"}, "name"),
]


@pytest.mark.parametrize(("step", "options", "message"), [c[1:] for c in BAD_OPTIONS], ids=[c[0] for c in BAD_OPTIONS])
def test_bad_options_are_input_errors_naming_the_field(step, options, message):
    with pytest.raises(InputError) as failed:
        parse_task(step, options, source="release.yaml")
    assert message in str(failed.value)
    assert "release.yaml" in str(failed.value)


def test_options_take_the_seeds_names_and_aliases():
    restart = parse_task("restart", {"kind": "deploy", "name": "web", "waitUntilReady": "PT2M"})
    assert restart.timeout.total_seconds() == 120
    get = parse_task("get", {"kind": "cm", "fetchType": "fetch_one", "allNamespaces": True})
    assert (get.fetch_type, get.all_namespaces) == ("FETCH_ONE", True)
    patch = parse_task("patch", {"kind": "cm", "name": "a", "patch": [], "patchType": "json-patch"})
    assert patch.patch_type == "json"
    delete = parse_task("delete", {"kind": "cm", "name": "a", "propagationPolicy": "foreground", "missingOk": True})
    assert (delete.propagation_policy, delete.missing_ok) == ("Foreground", True)


async def test_a_release_as_steps(kube, namespace, tmp_path):
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "web.yaml.j2").write_text(
        deployment(replicas=1).replace("image: nginx", "image: {{ image }}")
    )
    (tmp_path / "sidecar.yaml").write_text(
        "spec:\n  template:\n    spec:\n      containers:\n"
        "        - {name: sidecar, image: registry.k8s.io/pause:3.9}\n"
    )
    ctx = KubeTaskContext(base_dir=tmp_path, variables={"image": "nginx:1.27"})

    async def step(operation, **options):
        return await run_kube_task(kube, parse_task(operation, {"namespace": namespace, **options}), ctx)

    applied = await step("apply", template="manifests/web.yaml.j2", waitUntilReady="PT1M")
    assert applied["created"] == 1
    assert applied["objects"][0]["kind"] == "Deployment"
    assert applied["objects"][0]["namespace"] == namespace

    image = await step(
        "get", kind="deploy", name="web", fetchType="FETCH_ONE", jsonpath="{.spec.template.spec.containers[0].image}"
    )
    assert image["values"] == "nginx:1.27"

    patched = await step("patch", kind="Deployment", name="web", file="sidecar.yaml", waitUntilReady="PT1M")
    containers = {c["name"]: c["image"] for c in patched["item"]["spec"]["template"]["spec"]["containers"]}
    assert containers == {"main": "nginx:1.27", "sidecar": "registry.k8s.io/pause:3.9"}

    restarted = await step("restart", kind="deployment", name="web", waitUntilReady="PT1M")
    assert restarted["restartedAt"].endswith("Z")
    assert restarted["item"]["status"]["readyReplicas"] == 1

    available = await step("wait", kind="deploy", name="web", condition="Available", timeout="PT30S")
    assert available["item"]["status"]["availableReplicas"] == 1

    store = LocalArtifactStore(tmp_path / "artifacts")
    stored = await run_kube_task(
        kube,
        parse_task("get", {"kind": "pods", "namespace": namespace, "labelSelector": "app=web", "fetchType": "STORE"}),
        KubeTaskContext(artifacts=store, store_key="run/pods.jsonl"),
    )
    assert stored["uri"] == "artifact://run/pods.jsonl"
    lines = (tmp_path / "artifacts" / "run" / "pods.jsonl").read_text().splitlines()
    assert stored["size"] == len(lines) >= 1
    assert json.loads(lines[0])["kind"] == "Pod"

    deleted = await step("delete", kind="deploy", name="web", propagationPolicy="Foreground", timeout="PT1M")
    assert deleted["deleted"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": namespace, "found": True}
    ]
    gone = await step("wait", kind="deploy", name="web", deleted=True, timeout="PT5S")
    assert gone["item"] is None


async def test_inline_manifest_data_and_template_errors(kube, namespace, tmp_path):
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inline"}, "data": {"a": "1"}}
    out = await run_kube_task(kube, parse_task("apply", {"manifest": [data], "namespace": namespace, "dryRun": True}))
    assert out["objects"][0]["result"] == "created"
    assert "+  a: '1'" in out["objects"][0]["diff"]
    (tmp_path / "bad.j2").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ missing }}}\n")
    with pytest.raises(InputError, match=r"bad.j2.*'missing' is undefined"):
        await run_kube_task(
            kube,
            parse_task("apply", {"template": "bad.j2", "namespace": namespace}),
            KubeTaskContext(base_dir=tmp_path),
        )
