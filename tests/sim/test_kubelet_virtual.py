"""The kubelet's virtual path: scheduling, containers without a command, image pull failures, deletion."""

from tests.sim.kubelet_harness import (
    container_status,
    create_pod,
    delete_pod,
    events,
    get_pod,
    phase,
    pod,
    running_cluster,
    wait_for,
    wait_pod,
    waiting_reason,
)


def _ready(p):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions", []))


async def test_nodes_are_ready_and_one_has_gpus():
    async with running_cluster(nodes=3) as state:
        nodes = state.store.list_objects(state.rt("", "Node"))
        assert [n["metadata"]["name"] for n in nodes] == ["k-node-0", "k-node-1", "k-node-2"]
        assert all(
            n["status"]["conditions"][0] == n["status"]["conditions"][0] | {"type": "Ready", "status": "True"}
            for n in nodes
        )
        assert [n["status"]["capacity"].get("nvidia.com/gpu") for n in nodes] == [None, None, "4"]


async def test_virtual_container_runs_and_becomes_ready():
    async with running_cluster(ready_delay=0.05) as state:
        create_pod(state, pod("web", {"name": "nginx", "image": "nginx:1.27"}))
        p = await wait_pod(state, "web", _ready)
        status = p["status"]
        assert p["spec"]["nodeName"].startswith("k-node-")
        assert status["phase"] == "Running"
        assert status["qosClass"] == "BestEffort"
        assert status["podIP"].startswith("10.244.")
        assert status["hostIP"].startswith("192.168.0.")
        types = {c["type"]: c["status"] for c in status["conditions"]}
        assert types | {"PodScheduled": "True", "Initialized": "True", "ContainersReady": "True"} == types
        cs = container_status(p, "nginx")
        assert (cs["ready"], cs["started"], cs["restartCount"]) == (True, True, 0)
        assert "running" in cs["state"]
        reasons = [r for r, _ in events(state, "web")]
        assert {"Scheduled", "Pulling", "Pulled", "Created", "Started"} <= set(reasons)


async def test_node_selector_and_resources_decide_the_node():
    async with running_cluster() as state:
        gpu = {
            "name": "c",
            "image": "cuda",
            "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "1", "memory": "1Gi"}},
        }
        create_pod(state, pod("train", gpu))
        create_pod(
            state, pod("pinned", {"name": "c", "image": "x"}, nodeSelector={"kubernetes.io/hostname": "k-node-0"})
        )
        train = await wait_pod(state, "train", lambda p: p["spec"].get("nodeName"))
        pinned = await wait_pod(state, "pinned", lambda p: p["spec"].get("nodeName"))
        assert train["spec"]["nodeName"] == "k-node-1"
        assert pinned["spec"]["nodeName"] == "k-node-0"
        running = await wait_pod(state, "train", lambda p: phase(p) == "Running")
        assert running["status"]["qosClass"] == "Guaranteed"


async def test_unschedulable_pod_reports_the_scheduler_message_and_is_retried():
    async with running_cluster() as state:
        big = {"name": "c", "image": "x", "resources": {"requests": {"nvidia.com/gpu": "3"}}}
        create_pod(state, pod("first", big))
        await wait_pod(state, "first", lambda p: p["spec"].get("nodeName"))
        create_pod(state, pod("second", big))

        def unschedulable(p):
            conditions = (p.get("status") or {}).get("conditions") or []
            return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conditions)

        p = await wait_pod(state, "second", unschedulable)
        message = p["status"]["conditions"][0]["message"]
        assert message.startswith("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.")
        assert ("FailedScheduling", message) in events(state, "second")
        assert phase(p) == "Pending"
        delete_pod(state, "first")
        await wait_pod(state, "second", lambda p: p["spec"].get("nodeName") == "k-node-1")


async def test_failing_image_goes_from_err_image_pull_to_back_off():
    async with running_cluster() as state:
        create_pod(state, pod("bad", {"name": "app", "image": "registry.example/app:fail"}))
        p = await wait_pod(state, "bad", lambda p: waiting_reason(p, "app") == "ErrImagePull")
        assert phase(p) == "Pending"
        p = await wait_pod(state, "bad", lambda p: waiting_reason(p, "app") == "ImagePullBackOff")
        reasons = [r for r, _ in events(state, "bad")]
        assert {"Pulling", "Failed", "BackOff"} <= set(reasons)
        assert phase(p) == "Pending"


async def test_pod_without_node_is_removed_at_once_and_bound_pod_after_stopping():
    async with running_cluster() as state:
        create_pod(state, pod("nowhere", {"name": "c", "image": "x"}, nodeSelector={"no": "such"}))
        await wait_pod(state, "nowhere", lambda p: (p.get("status") or {}).get("conditions"))
        delete_pod(state, "nowhere", grace=30)
        await wait_for(state, lambda s: get_pod(s, "nowhere") is None)
        create_pod(state, pod("web", {"name": "c", "image": "x"}))
        await wait_pod(state, "web", _ready)
        delete_pod(state, "web", grace=30)
        await wait_for(state, lambda s: get_pod(s, "web") is None)
        assert "Killing" in [r for r, _ in events(state, "web")]
