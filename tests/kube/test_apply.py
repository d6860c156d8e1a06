"""Server-side apply on the cluster under test (the sim, or a real cluster via FLEET_TEST_KUBECONFIG)."""

from urllib.parse import parse_qsl

import pytest
import trio

from fleet.errors import ApiError, InputError
from fleet.kube import KubeClient
from fleet.kube.apply import apply
from fleet.kube.delete import delete
from fleet.kube.get import get
from fleet.kube.patch import patch
from tests.kube.manifests import CRD_AND_CR, configmap, deployment


async def test_apply_reports_created_then_unchanged_then_changed(kube, namespace):
    first = await apply(kube, configmap(a="1") + "---" + deployment(), namespace=namespace, wait_until_ready=30)
    assert [(o.kind, o.result) for o in first] == [("ConfigMap", "created"), ("Deployment", "created")]
    for o in first:
        assert o.namespace == namespace
        assert o.uid
        assert o.resource_version
        assert o.generation == 1
    again = await apply(kube, configmap(a="1"), namespace=namespace)
    assert again[0].result == "unchanged"
    assert again[0].resource_version == first[0].resource_version
    changed = await apply(kube, configmap(a="2"), namespace=namespace)
    assert changed[0].result == "changed"
    live = await get(kube, "ConfigMap", "settings", namespace=namespace)
    assert live.item["data"] == {"a": "2"}


async def test_manifest_namespace_wins_over_the_default(kube, namespace):
    text = configmap("own").replace("metadata: {name: own}", f"metadata: {{name: own, namespace: {namespace}}}")
    out = await apply(kube, text, namespace="default-is-not-used")
    assert out[0].namespace == namespace


async def test_conflict_without_force_names_the_other_manager_and_field(kube, namespace):
    await apply(kube, configmap(a="1"), namespace=namespace, field_manager="someone-else")
    with pytest.raises(ApiError) as failed:
        await apply(kube, configmap(a="2"), namespace=namespace)
    assert failed.value.code == 409
    assert "someone-else" in str(failed.value)
    assert ".data.a" in str(failed.value)
    assert "force" in str(failed.value)
    forced = await apply(kube, configmap(a="2"), namespace=namespace, force=True)
    assert forced[0].result == "changed"
    live = await get(kube, "ConfigMap", "settings", namespace=namespace)
    assert live.item["data"]["a"] == "2"


async def test_crd_and_custom_resource_in_one_file(kube, namespace):
    out = await apply(kube, CRD_AND_CR, namespace=namespace)
    assert [o.kind for o in out] == ["CustomResourceDefinition", "Widget"]  # the CRD went first
    assert out[1].namespace == namespace
    widget = await get(kube, "wdg", "first", namespace=namespace, api_group="example.fleet.dev")
    assert widget.item["spec"] == {"size": 3}


async def test_dry_run_diff_shows_the_change_and_changes_nothing(kube, namespace):
    await apply(kube, configmap(a="1"), namespace=namespace)
    preview = await apply(kube, configmap(a="2") + "---" + configmap("new", b="x"), namespace=namespace, dry_run=True)
    assert [o.result for o in preview] == ["changed", "created"]
    assert "-  a: '1'" in preview[0].diff
    assert "+  a: '2'" in preview[0].diff
    assert "+  b: x" in preview[1].diff
    live = await get(kube, "ConfigMap", namespace=namespace, label_selector=None)
    by_name = {i["metadata"]["name"]: i for i in live.items}
    assert by_name["settings"]["data"] == {"a": "1"}
    assert "new" not in by_name


async def test_dry_run_of_an_unchanged_object_has_an_empty_diff(kube, namespace):
    await apply(kube, configmap(a="1"), namespace=namespace)
    preview = await apply(kube, configmap(a="1"), namespace=namespace, dry_run=True)
    assert preview[0].result == "unchanged"
    assert preview[0].diff == ""


BAD_INPUT = [
    ("unknown kind", "apiVersion: v1\nkind: Gizmo\nmetadata: {name: g}\n", "document 2: kind", "Gizmo"),
    (
        "unknown group",
        "apiVersion: nope.example.com/v1\nkind: Thing\nmetadata: {name: t}\n",
        "document 2: kind",
        "'nope.example.com/v1'",
    ),
    ("no apiVersion", "kind: ConfigMap\nmetadata: {name: g}\n", "document 2: apiVersion", "apiVersion is missing"),
    ("invalid yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [g\n", "<inline>:10", "(started on line 9)"),
    ("no name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "metadata.name", "metadata.name is missing"),
    # Errors only the schema finds (before: the server, after the earlier documents were applied).
    (
        "replicas not a number",
        deployment().replace("replicas: 2", 'replicas: "three"'),
        "document 2: spec.replicas",
        'Deployment web: expected integer, got string "three"',
    ),
    (
        "missing required field",
        deployment().replace("  selector: {matchLabels: {app: web}}\n", ""),
        "document 2: spec.selector",
        "Deployment web: required field is missing",
    ),
    (
        "unknown field",
        deployment().replace("image: nginx", "image: nginx\n          imagePullPolice: Always"),
        "document 2: spec.template.spec.containers[0].imagePullPolice",
        "Deployment web: unknown field",
    ),
]


@pytest.mark.parametrize(("second", "where", "what"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
async def test_bad_document_is_reported_and_nothing_is_applied(kube, namespace, second, where, what):
    text = configmap("first-doc") + "---\n" + second
    with pytest.raises(InputError) as failed:
        await apply(kube, text, namespace=namespace)
    assert where in str(failed.value)
    assert what in str(failed.value)
    listed = await get(kube, "ConfigMap", namespace=namespace)
    assert "first-doc" not in {i["metadata"]["name"] for i in listed.items}


async def test_apply_and_wait_until_ready_waits_for_pods(kube, namespace):
    out = await apply(kube, deployment(replicas=3), namespace=namespace, wait_until_ready=30)
    live = await get(kube, "deployments", out[0].name, namespace=namespace, jsonpath="{.status.readyReplicas}")
    assert live.values == [3]


async def test_apply_fails_fast_on_progress_deadline_exceeded(kube, namespace):
    from fleet.errors import StepFailed

    text = deployment("broken", replicas=1, image="nginx:fail", progress_deadline=1)
    with trio.fail_after(20):  # far less than the wait's own 120 s: it must end on the failure
        with pytest.raises(StepFailed) as failed:
            await apply(kube, text, namespace=namespace, wait_until_ready=120)
    assert "ProgressDeadlineExceeded" in str(failed.value)


async def test_namespace_goes_first_and_objects_keep_their_own_namespace(kube, namespace):
    fresh = f"{namespace}-own"
    text = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: inside, namespace: {fresh}}}\ndata: {{a: '1'}}\n"
        f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {fresh}}}\n"
    )
    try:
        out = await apply(kube, text, namespace=namespace)
        assert [(o.kind, o.namespace) for o in out] == [("Namespace", None), ("ConfigMap", fresh)]
        assert all(o.result == "created" for o in out)
    finally:
        await delete(kube, "Namespace", fresh, missing_ok=True, wait=None)


async def test_outputs_name_every_object(kube, namespace):
    out = await apply(kube, configmap(a="1"), namespace=namespace, field_manager="release-bot")
    doc = out[0].as_output()
    assert set(doc) == {"apiVersion", "kind", "name", "namespace", "uid", "resourceVersion", "generation", "result"}
    assert (doc["apiVersion"], doc["kind"], doc["name"], doc["namespace"]) == ("v1", "ConfigMap", "settings", namespace)
    live = await get(kube, "ConfigMap", "settings", namespace=namespace)
    managers = {m["manager"]: m["operation"] for m in live.item["metadata"]["managedFields"]}
    assert managers == {"release-bot": "Apply"}


@pytest.mark.sim_only
@pytest.mark.parametrize(("second", "where", "what"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
async def test_bad_document_sends_no_write_at_all(kube, cluster, namespace, second, where, what):
    """Multi-document apply is validated before the first object is sent: the request log has no write."""
    text = configmap("first-doc") + "---\n" + CRD_AND_CR + "---\n" + second
    await trio.to_thread.run_sync(cluster.sim.clear_requests)
    with pytest.raises(InputError):
        await apply(kube, text, namespace=namespace)
    records = await trio.to_thread.run_sync(cluster.sim.requests)
    assert [(r.method, r.path) for r in records if r.method != "GET"] == []


WIDGET = "apiVersion: example.fleet.dev/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {{size: {size}}}\n"


@pytest.mark.sim_only
async def test_custom_resource_is_checked_against_the_crd_on_the_cluster(kube, cluster, namespace):
    await apply(kube, CRD_AND_CR, namespace=namespace)
    fresh = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context)
    try:
        await trio.to_thread.run_sync(cluster.sim.clear_requests)
        text = configmap("first-doc") + "---\n" + WIDGET.format(name="second", size="big")
        with pytest.raises(InputError) as failed:
            await apply(fresh, text, namespace=namespace)
        assert failed.value.location.field == "document 2: spec.size"
        assert "Widget second: expected integer, got string" in failed.value.message
        records = await trio.to_thread.run_sync(cluster.sim.requests)
        assert [r.method for r in records if r.method != "GET"] == []
        crd_reads = [r.path for r in records if "customresourcedefinitions" in r.path]
        assert crd_reads == ["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.fleet.dev"]
        await trio.to_thread.run_sync(cluster.sim.clear_requests)
        out = await apply(fresh, WIDGET.format(name="second", size=4), namespace=namespace)
        assert out[0].result == "created"
        records = await trio.to_thread.run_sync(cluster.sim.requests)
        assert not [r for r in records if "customresourcedefinitions" in r.path]  # the schema is cached
    finally:
        fresh.close()


@pytest.mark.sim_only
async def test_apply_asks_the_server_for_strict_field_validation(kube, cluster, namespace):
    """Kinds fleet cannot check (no schema it may read) still get kubectl's strictness on the server."""
    await trio.to_thread.run_sync(cluster.sim.clear_requests)
    await apply(kube, configmap(a="1"), namespace=namespace)
    records = await trio.to_thread.run_sync(cluster.sim.requests)
    patches = [r for r in records if r.method == "PATCH"]
    assert [dict(parse_qsl(r.query)).get("fieldValidation") for r in patches] == ["Strict"]


@pytest.mark.sim_only
async def test_bad_patch_and_selector_send_nothing(kube, cluster, namespace):
    await trio.to_thread.run_sync(cluster.sim.clear_requests)
    with pytest.raises(InputError, match="a json patch is a list"):
        await patch(kube, "ConfigMap", "x", {"data": {}}, patch_type="json", namespace=namespace)
    with pytest.raises(InputError, match="invalid label selector"):
        await delete(kube, "ConfigMap", namespace=namespace, label_selector="a in (b")
    with pytest.raises(InputError, match="invalid field selector"):
        await get(kube, "ConfigMap", namespace=namespace, field_selector="metadata.name")
    assert await trio.to_thread.run_sync(cluster.sim.requests) == []


async def test_the_schema_error_of_an_apply_names_the_cluster_version_it_used(kube, namespace):
    from fleet.kube.schemas import schema_version

    server = await kube.discovery.server_version()
    with pytest.raises(InputError) as failed:
        await apply(kube, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 1}\n", namespace=namespace)
    expected = f"the Kubernetes {schema_version(server)} schemas, for the cluster's version {server}"
    assert expected in failed.value.message
