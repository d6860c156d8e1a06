import trio

from tests.sim.test_controllers_harness import (
    change,
    condition,
    controlled_cluster,
    create,
    deployment,
    get,
    listed,
    owned_by,
    wait_for,
)


def _available(state, name="web"):
    d = get(state, "Deployment", name)
    status = d.get("status", {})
    replicas = d["spec"]["replicas"]
    return (
        status.get("observedGeneration") == d["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
        and condition(d, "Available").get("status") == "True"
        and condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable"
        and d
    )


async def test_a_deployment_becomes_available_with_one_owned_replicaset():
    async with controlled_cluster() as state:
        create(state, deployment(replicas=3))
        d = await wait_for(state, _available)
        [rs] = owned_by(state, "ReplicaSet", d)
        hash_ = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{hash_}"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        [ref] = rs["metadata"]["ownerReferences"]
        assert ref["controller"] is True
        assert ref["kind"] == "Deployment"
        assert ref["name"] == "web"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": hash_}
        pods = owned_by(state, "Pod", rs)
        assert len(pods) == 3
        for pod in pods:
            assert pod["metadata"]["name"].startswith(f"web-{hash_}-")
            assert len(pod["metadata"]["name"]) == len(f"web-{hash_}-") + 5
            assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": hash_}
        assert d["status"]["readyReplicas"] == 3
        assert "unavailableReplicas" not in d["status"]
        assert rs["status"]["availableReplicas"] == rs["status"]["fullyLabeledReplicas"] == 3
        reasons = {e["reason"] for e in listed(state, "Event")}
        assert {"ScalingReplicaSet", "SuccessfulCreate"} <= reasons


async def test_an_image_change_rolls_out_within_max_surge_and_max_unavailable():
    async with controlled_cluster() as state:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        create(state, deployment(replicas=4, strategy=strategy))
        d = await wait_for(state, _available)
        [old_rs] = owned_by(state, "ReplicaSet", d)

        def image(obj):
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"

        change(state, "Deployment", "web", image)
        worst = {"pods": 0, "available": 4}
        async with trio.open_nursery() as nursery:

            async def watch_invariants():
                seen = state.store.resource_version
                while True:
                    rss = owned_by(state, "ReplicaSet", d)
                    worst["pods"] = max(worst["pods"], sum(rs["spec"]["replicas"] for rs in rss))
                    available = sum(rs.get("status", {}).get("availableReplicas", 0) for rs in rss)
                    worst["available"] = min(worst["available"], available)
                    await state.store.wait_changed(seen)
                    seen = state.store.resource_version

            nursery.start_soon(watch_invariants)
            await wait_for(state, lambda s: _available(s) and not owned_by(s, "Pod", old_rs), 15)
            nursery.cancel_scope.cancel()
        assert worst == {"pods": 5, "available": 4}
        rss = {rs["metadata"]["name"]: rs for rs in owned_by(state, "ReplicaSet", d)}
        assert rss[old_rs["metadata"]["name"]]["spec"]["replicas"] == 0
        [new_rs] = [rs for rs in rss.values() if rs["metadata"]["name"] != old_rs["metadata"]["name"]]
        assert new_rs["spec"]["replicas"] == 4
        assert new_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        assert get(state, "Deployment", "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        pods = [p for p in listed(state, "Pod") if not p["metadata"].get("deletionTimestamp")]
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.28"}


async def test_a_restarted_at_annotation_replaces_every_pod():
    async with controlled_cluster() as state:
        create(state, deployment(replicas=2))
        await wait_for(state, _available)
        before = {p["metadata"]["name"] for p in listed(state, "Pod")}

        def restart(obj):
            annotations = obj["spec"]["template"]["metadata"].setdefault("annotations", {})
            annotations["kubectl.kubernetes.io/restartedAt"] = "2026-11-23T11:00:00Z"

        change(state, "Deployment", "web", restart)
        await wait_for(
            state, lambda s: _available(s) and not before & {p["metadata"]["name"] for p in listed(s, "Pod")}
        )
        pods = listed(state, "Pod")
        assert len(pods) == 2
        assert all(
            p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == "2026-11-23T11:00:00Z" for p in pods
        )


async def test_an_impossible_rollout_reports_progress_deadline_exceeded():
    async with controlled_cluster() as state:
        create(state, deployment(replicas=2, image="nginx:fail", progressDeadlineSeconds=2))
        d = await wait_for(
            state,
            lambda s: (
                condition(get(s, "Deployment", "web"), "Progressing").get("reason") == "ProgressDeadlineExceeded"
                and get(s, "Deployment", "web")
            ),
            timeout=8,
        )
        progressing = condition(d, "Progressing")
        assert progressing["status"] == "False"
        assert progressing["message"].endswith("has timed out progressing.")
        assert condition(d, "Available")["status"] == "False"
        assert d["status"]["unavailableReplicas"] == 2
        assert d["status"]["updatedReplicas"] == 2
        assert "availableReplicas" not in d["status"]


async def test_recreate_scales_the_old_replicaset_down_before_the_new_one_starts():
    async with controlled_cluster() as state:
        create(state, deployment(replicas=2, strategy={"type": "Recreate"}))
        d = await wait_for(state, _available)
        [old_rs] = owned_by(state, "ReplicaSet", d)
        old_pods = {p["metadata"]["name"] for p in owned_by(state, "Pod", old_rs)}

        def image(obj):
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"

        change(state, "Deployment", "web", image)
        overlap = []
        async with trio.open_nursery() as nursery:

            async def watch_overlap():
                seen = state.store.resource_version
                while True:
                    names = {p["metadata"]["name"] for p in listed(state, "Pod")}
                    if names & old_pods and names - old_pods:
                        overlap.append(names)
                    await state.store.wait_changed(seen)
                    seen = state.store.resource_version

            nursery.start_soon(watch_overlap)
            await wait_for(state, lambda s: _available(s) and len(owned_by(s, "ReplicaSet", d)) == 2, 15)
            nursery.cancel_scope.cancel()
        assert overlap == []


async def test_paused_deployments_do_not_roll_out_until_resumed():
    async with controlled_cluster() as state:
        create(state, deployment(replicas=1))
        d = await wait_for(state, _available)

        def pause_and_change(obj):
            obj["spec"]["paused"] = True
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"

        change(state, "Deployment", "web", pause_and_change)
        await wait_for(
            state, lambda s: condition(get(s, "Deployment", "web"), "Progressing").get("reason") == "DeploymentPaused"
        )
        assert len(owned_by(state, "ReplicaSet", d)) == 1
        change(state, "Deployment", "web", lambda obj: obj["spec"].update(paused=False))
        await wait_for(state, lambda s: _available(s) and len(owned_by(s, "ReplicaSet", d)) == 2)


async def test_old_replicasets_beyond_the_revision_history_limit_are_pruned():
    async with controlled_cluster() as state:
        create(state, deployment(replicas=1, revisionHistoryLimit=1))
        d = await wait_for(state, _available)
        for tag in ("1.28", "1.29", "1.30"):

            def image(obj, tag=tag):
                obj["spec"]["template"]["spec"]["containers"][0]["image"] = f"nginx:{tag}"

            change(state, "Deployment", "web", image)
            await wait_for(
                state,
                lambda s, tag=tag: (
                    _available(s)
                    and all(p["spec"]["containers"][0]["image"] == f"nginx:{tag}" for p in listed(s, "Pod"))
                ),
            )
        await wait_for(state, lambda s: len(owned_by(s, "ReplicaSet", d)) == 2)
        revisions = sorted(
            int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
            for rs in owned_by(state, "ReplicaSet", d)
        )
        assert revisions == [3, 4]


async def test_scaling_a_deployment_scales_its_replicaset():
    async with controlled_cluster() as state:
        create(state, deployment(replicas=1))
        d = await wait_for(state, _available)
        change(state, "Deployment", "web", lambda obj: obj["spec"].update(replicas=3))
        await wait_for(state, lambda s: _available(s) and len(listed(s, "Pod")) == 3)
        change(state, "Deployment", "web", lambda obj: obj["spec"].update(replicas=0))
        await wait_for(state, lambda s: _available(s) and not listed(s, "Pod"))
        [rs] = owned_by(state, "ReplicaSet", d)
        assert rs["spec"]["replicas"] == 0
