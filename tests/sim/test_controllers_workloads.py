import trio

from fleet.sim.controllers.job import format_indexes, parse_indexes
from tests.sim.test_controllers_harness import (
    change,
    condition,
    controlled_cluster,
    create,
    get,
    listed,
    owned_by,
    wait_for,
)


def _template(app, image="nginx:1.27", **spec):
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": image}], **spec},
    }


def statefulset(name="db", replicas=3, **spec):
    return {
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": _template(name),
            **spec,
        },
    }


def _sts_done(state, name="db"):
    sts = get(state, "StatefulSet", name)
    status = sts.get("status", {})
    replicas = sts["spec"]["replicas"]
    return (
        status.get("observedGeneration") == sts["metadata"]["generation"]
        and status.get("readyReplicas", 0) == replicas
        and status.get("updatedReplicas", 0) == replicas
        and status.get("currentRevision") == status.get("updateRevision")
        and sts
    )


async def test_a_statefulset_starts_its_pods_in_order_each_after_the_previous_is_ready():
    async with controlled_cluster(ready_delay=0.1) as state:
        create(state, statefulset(replicas=3))
        violations = []
        async with trio.open_nursery() as nursery:

            async def check_order():
                seen = state.store.resource_version
                while True:
                    pods = {p["metadata"]["name"]: p for p in listed(state, "Pod")}
                    for i in (1, 2):
                        if f"db-{i}" in pods:
                            prev = pods.get(f"db-{i - 1}")
                            ready = condition(prev, "Ready").get("status") == "True"
                            if not ready:
                                violations.append(sorted(pods))
                    await state.store.wait_changed(seen)
                    seen = state.store.resource_version

            nursery.start_soon(check_order)
            sts = await wait_for(state, _sts_done)
            nursery.cancel_scope.cancel()
        assert violations == []
        pods = {p["metadata"]["name"]: p for p in listed(state, "Pod")}
        assert sorted(pods) == ["db-0", "db-1", "db-2"]
        revision = sts["status"]["updateRevision"]
        assert get(state, "ControllerRevision", revision)["revision"] == 1
        for i in range(3):
            labels = pods[f"db-{i}"]["metadata"]["labels"]
            assert labels["controller-revision-hash"] == revision
            assert labels["statefulset.kubernetes.io/pod-name"] == f"db-{i}"
            assert pods[f"db-{i}"]["spec"]["hostname"] == f"db-{i}"
            assert pods[f"db-{i}"]["spec"]["subdomain"] == "db"
        assert sts["status"]["currentReplicas"] == sts["status"]["availableReplicas"] == 3


async def test_a_statefulset_rolls_pods_in_reverse_ordinal_order_above_the_partition():
    async with controlled_cluster() as state:
        create(state, statefulset(replicas=3))
        sts = await wait_for(state, _sts_done)
        first_revision = sts["status"]["currentRevision"]
        deletions = []
        async with trio.open_nursery() as nursery:

            async def record_deletions():
                seen = state.store.resource_version
                while True:
                    await state.store.wait_changed(seen)
                    for event in state.store.events_since(seen):
                        if event.resource.key == "pods" and event.type == "DELETED":
                            deletions.append(event.object["metadata"]["name"])
                    seen = state.store.resource_version

            nursery.start_soon(record_deletions)

            def new_image(obj):
                obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
                obj["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}

            change(state, "StatefulSet", "db", new_image)
            sts = await wait_for(
                state,
                lambda s: (
                    get(s, "StatefulSet", "db")["status"].get("updatedReplicas") == 2 and get(s, "StatefulSet", "db")
                ),
            )
            await wait_for(state, lambda s: get(s, "StatefulSet", "db")["status"].get("readyReplicas") == 3)
            assert deletions == ["db-2", "db-1"]
            assert sts["status"]["currentRevision"] == first_revision
            assert sts["status"]["updateRevision"] != first_revision
            change(
                state,
                "StatefulSet",
                "db",
                lambda obj: obj["spec"]["updateStrategy"]["rollingUpdate"].update(partition=0),
            )
            sts = await wait_for(state, _sts_done)
            nursery.cancel_scope.cancel()
        assert deletions == ["db-2", "db-1", "db-0"]
        assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] != first_revision
        images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in listed(state, "Pod")}
        assert images == {"db-0": "nginx:1.28", "db-1": "nginx:1.28", "db-2": "nginx:1.28"}
        assert len(listed(state, "ControllerRevision")) == 2


async def test_a_parallel_statefulset_with_claims_scales_down_from_the_top():
    async with controlled_cluster() as state:
        claim = {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }
        create(state, statefulset(replicas=3, podManagementPolicy="Parallel", volumeClaimTemplates=[claim]))
        await wait_for(state, _sts_done)
        claims = {c["metadata"]["name"]: c for c in listed(state, "PersistentVolumeClaim")}
        assert sorted(claims) == ["data-db-0", "data-db-1", "data-db-2"]
        await wait_for(
            state,
            lambda s: all(c.get("status", {}).get("phase") == "Bound" for c in listed(s, "PersistentVolumeClaim")),
        )
        pod0 = get(state, "Pod", "db-0")
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in pod0["spec"]["volumes"]
        change(state, "StatefulSet", "db", lambda obj: obj["spec"].update(replicas=1))
        await wait_for(state, lambda s: [p["metadata"]["name"] for p in listed(s, "Pod")] == ["db-0"] and _sts_done(s))


def daemonset(name="agent", **spec):
    return {
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": _template(name), **spec},
    }


def _ds_done(state, name="agent"):
    ds = get(state, "DaemonSet", name)
    status = ds.get("status", {})
    return (
        status.get("observedGeneration") == ds["metadata"]["generation"]
        and status.get("desiredNumberScheduled", -1) == status.get("updatedNumberScheduled", 0)
        and status.get("numberAvailable", 0) == status.get("desiredNumberScheduled")
        and not [p for p in listed(state, "Pod") if p["metadata"].get("deletionTimestamp")]
        and ds
    )


async def test_a_daemonset_runs_one_pod_per_matching_node_and_rolls_them():
    async with controlled_cluster(nodes=3) as state:
        create(state, daemonset())
        ds = await wait_for(state, _ds_done)
        assert ds["status"]["desiredNumberScheduled"] == ds["status"]["numberReady"] == 3
        pods = owned_by(state, "Pod", ds)
        assert sorted(p["spec"]["nodeName"] for p in pods) == ["ctl-node-0", "ctl-node-1", "ctl-node-2"]
        before = {p["metadata"]["name"] for p in pods}

        def new_image(obj):
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.36"

        change(state, "DaemonSet", "agent", new_image)
        await wait_for(state, lambda s: _ds_done(s) and not before & {p["metadata"]["name"] for p in listed(s, "Pod")})
        pods = listed(state, "Pod")
        assert len(pods) == 3
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:1.36"}
        revisions = sorted(r["revision"] for r in listed(state, "ControllerRevision"))
        assert revisions == [1, 2]


async def test_a_daemonset_honours_its_node_selector():
    async with controlled_cluster(nodes=2) as state:
        ds = daemonset()
        ds["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "ctl-node-1"}
        create(state, ds)
        got = await wait_for(state, _ds_done)
        assert got["status"]["desiredNumberScheduled"] == 1
        assert [p["spec"]["nodeName"] for p in listed(state, "Pod")] == ["ctl-node-1"]


async def test_a_daemonset_stays_off_tainted_nodes_unless_it_tolerates_them():
    async with controlled_cluster(nodes=1, gpu_nodes=1) as state:
        create(state, daemonset())
        got = await wait_for(state, _ds_done)
        assert got["status"]["desiredNumberScheduled"] == 1
        assert [p["spec"]["nodeName"] for p in listed(state, "Pod")] == ["ctl-node-0"]
        tolerating = daemonset("gpu-agent")
        tolerating["spec"]["template"]["spec"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
        create(state, tolerating)
        await wait_for(state, lambda s: _ds_done(s, "gpu-agent"))
        assert sorted(p["spec"]["nodeName"] for p in listed(state, "Pod")) == ["ctl-node-0", "ctl-node-0", "ctl-node-1"]


def job(name, command, **spec):
    return {
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", "command": command}],
                }
            },
            **spec,
        },
    }


def _finished(state, name):
    j = get(state, "Job", name)
    done = condition(j, "Complete").get("status") == "True" or condition(j, "Failed").get("status") == "True"
    return done and j


async def test_a_job_completes_after_its_completions_succeed():
    async with controlled_cluster() as state:
        create(state, job("ok", ["true"], completions=3, parallelism=2))
        j = await wait_for(state, lambda s: _finished(s, "ok"), timeout=30)
        status = j["status"]
        assert condition(j, "Complete")["reason"] == "CompletionsReached"
        assert condition(j, "SuccessCriteriaMet")["status"] == "True"
        assert status["succeeded"] == 3
        assert "failed" not in status
        assert status.get("active", 0) == 0
        assert status["ready"] == 0
        assert status["startTime"] <= status["completionTime"]
        pods = owned_by(state, "Pod", j)
        assert len(pods) == 3
        assert all(p["status"]["phase"] == "Succeeded" for p in pods)
        assert all("finalizers" not in p["metadata"] for p in pods)
        assert all(p["metadata"]["labels"]["job-name"] == "ok" for p in pods)


async def test_a_job_fails_once_its_backoff_limit_is_exceeded():
    async with controlled_cluster() as state:
        create(state, job("bad", ["false"], backoffLimit=1))
        j = await wait_for(state, lambda s: _finished(s, "bad"), timeout=30)
        failed = condition(j, "Failed")
        assert failed["status"] == "True"
        assert failed["reason"] == "BackoffLimitExceeded"
        assert condition(j, "FailureTarget")["reason"] == "BackoffLimitExceeded"
        assert j["status"]["failed"] == 2
        assert "completionTime" not in j["status"]
        assert len(owned_by(state, "Pod", j)) == 2


async def test_a_job_past_its_active_deadline_fails_and_stops_its_pods():
    async with controlled_cluster() as state:
        create(state, job("slow", ["sleep", "30"], activeDeadlineSeconds=1))
        j = await wait_for(state, lambda s: _finished(s, "slow"), timeout=15)
        assert condition(j, "Failed")["reason"] == "DeadlineExceeded"
        await wait_for(state, lambda s: not [p for p in owned_by(s, "Pod", j) if p["status"].get("phase") == "Running"])


async def test_an_indexed_job_runs_each_index_and_a_finished_job_expires_with_its_ttl():
    async with controlled_cluster() as state:
        create(
            state,
            job("idx", ["true"], completions=3, parallelism=3, completionMode="Indexed", ttlSecondsAfterFinished=1),
        )
        j = await wait_for(state, lambda s: _finished(s, "idx"), timeout=30)
        assert j["status"]["completedIndexes"] == "0-2"
        indexes = sorted(
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in owned_by(state, "Pod", j)
        )
        assert indexes == ["0", "1", "2"]
        await wait_for(state, lambda s: get(s, "Job", "idx") is None and not listed(s, "Pod"), timeout=10)


def test_completed_indexes_compress_into_ranges():
    assert format_indexes([0, 1, 2, 4, 6, 7]) == "0-2,4,6-7"
    assert parse_indexes("0-2,4,6-7") == {0, 1, 2, 4, 6, 7}
    assert format_indexes([]) == ""
    assert parse_indexes("") == set()
