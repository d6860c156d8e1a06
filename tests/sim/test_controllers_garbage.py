from fleet.sim.controllers.ownership import FOREGROUND
from tests.sim.test_controllers_harness import (
    condition,
    controlled_cluster,
    create,
    deleted,
    deployment,
    get,
    listed,
    owned_by,
    wait_for,
)


async def _running_deployment(state, replicas=2):
    create(state, deployment(replicas=replicas))
    return await wait_for(
        state,
        lambda s: (
            (get(s, "Deployment", "web") or {}).get("status", {}).get("availableReplicas") == replicas
            and get(s, "Deployment", "web")
        ),
    )


async def test_background_deletion_removes_replicasets_and_pods_after_the_owner():
    async with controlled_cluster() as state:
        await _running_deployment(state)
        deleted(state, get(state, "Deployment", "web"), "Background")
        assert get(state, "Deployment", "web") is None
        await wait_for(state, lambda s: not listed(s, "ReplicaSet") and not listed(s, "Pod"))


async def test_foreground_deletion_removes_dependents_first_then_the_owner():
    async with controlled_cluster() as state:
        d = await _running_deployment(state)
        [rs] = owned_by(state, "ReplicaSet", d)
        order = []
        deleted(state, d, "Foreground")
        owner = get(state, "Deployment", "web")
        assert owner is not None
        assert FOREGROUND in owner["metadata"]["finalizers"]
        assert owner["metadata"]["deletionTimestamp"]

        def track(s):
            if not listed(s, "Pod") and "pods" not in order:
                order.append("pods")
            if get(s, "ReplicaSet", rs["metadata"]["name"]) is None and "rs" not in order:
                order.append("rs")
            if get(s, "Deployment", "web") is None and "deployment" not in order:
                order.append("deployment")
            return len(order) == 3

        await wait_for(state, track)
        assert order == ["pods", "rs", "deployment"]


async def test_orphan_deletion_keeps_dependents_without_the_owner_reference():
    async with controlled_cluster() as state:
        d = await _running_deployment(state)
        [rs] = owned_by(state, "ReplicaSet", d)
        deleted(state, d, "Orphan")
        await wait_for(state, lambda s: get(s, "Deployment", "web") is None)
        orphan = get(state, "ReplicaSet", rs["metadata"]["name"])
        assert orphan is not None
        assert "ownerReferences" not in orphan["metadata"]
        assert len(owned_by(state, "Pod", orphan)) == 2


async def test_an_object_whose_owner_does_not_exist_is_collected():
    async with controlled_cluster(kubelet=False) as state:
        cm = {
            "kind": "ConfigMap",
            "metadata": {
                "name": "stray",
                "namespace": "default",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "0000", "controller": True}
                ],
            },
        }
        create(state, cm)
        await wait_for(state, lambda s: get(s, "ConfigMap", "stray") is None)


async def test_a_terminating_namespace_loses_its_contents_and_then_goes():
    async with controlled_cluster() as state:
        create(state, {"kind": "Namespace", "metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes"]}})
        await wait_for(state, lambda s: get(s, "ServiceAccount", "default", "team"))
        create(state, {**deployment(replicas=2), "metadata": {"name": "web", "namespace": "team"}})
        create(state, {"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "team"}, "data": {"a": "b"}})
        await wait_for(state, lambda s: len(listed(s, "Pod", "team")) == 2)
        state.store.mark_deleting(state.rt("", "Namespace"), "", "team")
        await wait_for(state, lambda s: get(s, "Namespace", "team") is None)
        for kind in ("Pod", "ReplicaSet", "Deployment", "ConfigMap", "ServiceAccount"):
            assert listed(state, kind, "team") == [], kind


async def test_default_namespaces_exist_from_the_start():
    async with controlled_cluster(kubelet=False) as state:
        names = {ns["metadata"]["name"] for ns in listed(state, "Namespace", None)}
        assert names == {"default", "kube-system", "kube-public", "kube-node-lease"}
        assert get(state, "Namespace", "default")["status"]["phase"] == "Active"
        await wait_for(state, lambda s: get(s, "ServiceAccount", "default", "kube-system"))


async def test_a_crd_is_established_with_its_accepted_names():
    async with controlled_cluster(kubelet=False) as state:
        crd = {
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "sparkapplications.sparkoperator.k8s.io"},
            "spec": {
                "group": "sparkoperator.k8s.io",
                "scope": "Namespaced",
                "names": {"plural": "sparkapplications", "kind": "SparkApplication", "shortNames": ["sparkapp"]},
                "versions": [{"name": "v1beta2", "served": True, "storage": True}],
            },
        }
        create(state, crd)
        got = await wait_for(
            state,
            lambda s: (
                condition(get(s, "CustomResourceDefinition", crd["metadata"]["name"]), "Established").get("status")
                == "True"
                and get(s, "CustomResourceDefinition", crd["metadata"]["name"])
            ),
        )
        assert condition(got, "NamesAccepted")["status"] == "True"
        assert got["status"]["acceptedNames"] == {
            "plural": "sparkapplications",
            "kind": "SparkApplication",
            "shortNames": ["sparkapp"],
            "singular": "sparkapplication",
            "listKind": "SparkApplicationList",
        }
        assert got["status"]["storedVersions"] == ["v1beta2"]


async def test_load_balancers_get_an_address_and_claims_get_bound():
    async with controlled_cluster(kubelet=False) as state:
        create(
            state,
            {
                "kind": "Service",
                "metadata": {"name": "lb", "namespace": "default"},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            },
        )
        create(
            state,
            {
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "default"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
            },
        )
        svc = await wait_for(
            state,
            lambda s: (get(s, "Service", "lb").get("status") or {}).get("loadBalancer") and get(s, "Service", "lb"),
        )
        assert svc["status"]["loadBalancer"]["ingress"][0]["ip"].startswith("127.")
        assert svc["spec"]["clusterIP"].startswith("10.")
        assert svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]]
        pvc = await wait_for(
            state,
            lambda s: (
                get(s, "PersistentVolumeClaim", "data").get("status", {}).get("phase") == "Bound"
                and get(s, "PersistentVolumeClaim", "data")
            ),
        )
        pv = get(state, "PersistentVolume", pvc["spec"]["volumeName"])
        assert pv["spec"]["capacity"] == {"storage": "2Gi"}
        assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
        assert pvc["status"]["capacity"] == {"storage": "2Gi"}
        state.store.remove(state.rt("", "PersistentVolumeClaim"), "default", "data")
        await wait_for(state, lambda s: not listed(s, "PersistentVolume", None))


async def test_a_new_deployment_adopts_the_replicaset_and_pods_an_orphaning_delete_left():
    async with controlled_cluster() as state:
        d = await _running_deployment(state)
        [rs] = owned_by(state, "ReplicaSet", d)
        pods = {p["metadata"]["name"] for p in owned_by(state, "Pod", rs)}
        deleted(state, d, "Orphan")
        await wait_for(state, lambda s: get(s, "Deployment", "web") is None)
        again = create(state, deployment(replicas=2))
        await wait_for(
            state,
            lambda s: (
                [r["metadata"]["name"] for r in owned_by(s, "ReplicaSet", again)] == [rs["metadata"]["name"]]
                and (get(s, "Deployment", "web").get("status") or {}).get("availableReplicas") == 2
            ),
        )
        assert {p["metadata"]["name"] for p in listed(state, "Pod")} == pods


async def test_a_replicaset_adopts_a_matching_bare_pod_instead_of_starting_another():
    async with controlled_cluster() as state:
        template = {"metadata": {"labels": {"app": "solo"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        create(
            state,
            {
                "kind": "Pod",
                "metadata": {"name": "bare", "namespace": "default", **template["metadata"]},
                "spec": template["spec"],
            },
        )
        rs = create(
            state,
            {
                "kind": "ReplicaSet",
                "metadata": {"name": "solo", "namespace": "default"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "solo"}}, "template": template},
            },
        )
        await wait_for(state, lambda s: (get(s, "ReplicaSet", "solo").get("status") or {}).get("readyReplicas") == 1)
        assert [p["metadata"]["name"] for p in owned_by(state, "Pod", rs)] == ["bare"]
        assert len(listed(state, "Pod")) == 1
