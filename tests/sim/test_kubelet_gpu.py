"""The sim's GPU pool (``SimConfig.gpu_nodes``, ``fleet sim up --gpu-nodes N``) and the scheduler's taints
and tolerations: a pod that asks for ``nvidia.com/gpu`` lands only on a pool node with free GPUs, selected
and tolerated; otherwise it stays Pending with kube-scheduler's FailedScheduling message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import kubernetes
import pytest

from fleet.sim.kubelet.nodes import untolerated
from tests.sim.kubelet_harness import create_pod, delete_pod, events, phase, pod, running_cluster, wait_pod

GPU_SELECTOR = {"nvidia.com/gpu.present": "true"}
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def _gpu_container(gpus: int) -> dict:
    return {"name": "train", "image": "cuda", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}


def _unschedulable(p) -> str | None:
    for c in (p.get("status") or {}).get("conditions") or []:
        if c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable":
            return str(c["message"])
    return None


async def test_the_gpu_pool_nodes_advertise_gpus_and_carry_the_pool_label_and_taint():
    async with running_cluster(nodes=2, gpu_nodes=2) as state:
        nodes = state.store.list_objects(state.rt("", "Node"))
        assert [n["metadata"]["name"] for n in nodes] == ["k-node-0", "k-node-1", "k-node-2", "k-node-3"]
        for node in nodes[:2]:
            assert "nvidia.com/gpu" not in node["status"]["capacity"]
            assert "taints" not in node["spec"]
        for node in nodes[2:]:
            assert node["status"]["capacity"]["nvidia.com/gpu"] == "4"
            assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
            assert (
                node["metadata"]["labels"] | GPU_SELECTOR | {"fleet.sim/node-pool": "gpu"} == node["metadata"]["labels"]
            )
            assert node["spec"]["taints"] == [TAINT]


async def test_a_selected_tolerating_gpu_pod_runs_on_the_pool():
    async with running_cluster(nodes=2, gpu_nodes=1) as state:
        create_pod(state, pod("train", _gpu_container(1), nodeSelector=GPU_SELECTOR, tolerations=[TOLERATION]))
        create_pod(state, pod("web", {"name": "web", "image": "nginx"}))
        train = await wait_pod(state, "train", lambda p: phase(p) == "Running")
        web = await wait_pod(state, "web", lambda p: p["spec"].get("nodeName"))
        assert train["spec"]["nodeName"] == "k-node-2"
        assert web["spec"]["nodeName"] == "k-node-0"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"nodeSelector": GPU_SELECTOR},
            "0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}, "
            "2 node(s) didn't match Pod's node affinity/selector.",
            id="no toleration",
        ),
        pytest.param(
            {"tolerations": [TOLERATION], "nodeSelector": {"nvidia.com/gpu.product": "H100"}},
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
            id="a selector no node matches",
        ),
    ],
)
async def test_a_gpu_pod_the_pool_does_not_admit_stays_pending_with_the_scheduler_message(spec, message):
    async with running_cluster(nodes=2, gpu_nodes=1) as state:
        create_pod(state, pod("train", _gpu_container(1), **spec))
        p = await wait_pod(state, "train", _unschedulable)
        assert _unschedulable(p).startswith(message)
        assert phase(p) == "Pending"
        assert ("FailedScheduling", _unschedulable(p)) in events(state, "train")


async def test_a_full_pool_leaves_the_next_gpu_pod_pending_until_gpus_are_free():
    async with running_cluster(nodes=2, gpu_nodes=1) as state:
        create_pod(state, pod("big", _gpu_container(4), nodeSelector=GPU_SELECTOR, tolerations=[TOLERATION]))
        await wait_pod(state, "big", lambda p: p["spec"].get("nodeName"))
        create_pod(state, pod("next", _gpu_container(1), tolerations=[TOLERATION]))
        p = await wait_pod(state, "next", _unschedulable)
        assert _unschedulable(p).startswith("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
        delete_pod(state, "big")
        p = await wait_pod(state, "next", lambda p: p["spec"].get("nodeName"))
        assert p["spec"]["nodeName"] == "k-node-2"


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True),
        ({"key": "nvidia.com/gpu", "value": "present"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "absent"}, False),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "dedicated", "operator": "Exists"}, False),
    ],
)
def test_tolerations_match_taints_as_kubernetes_does(toleration, tolerated):
    assert (untolerated({"tolerations": [toleration]}, [TAINT]) is None) is tolerated


def test_a_prefer_no_schedule_taint_keeps_no_pod_off():
    assert untolerated({}, [{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]) is None


def test_fleet_sim_up_gpu_nodes_starts_each_cluster_with_its_gpu_pool(tmp_path):
    out = tmp_path / "fleet"
    command = [sys.executable, "-m", "fleet", "sim", "up", "--clusters", "1", "--gpu-nodes", "2", "--out", str(out)]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while not any("Ctrl-C" in line for line in lines):
            assert time.monotonic() < deadline, "fleet sim up did not start"
            line = proc.stdout.readline()
            assert line, "fleet sim up exited early:\n" + "".join(lines)
            lines.append(line)
        assert "GPU pool:  2 node(s) per cluster" in "".join(lines)
        api_client = kubernetes.config.new_client_from_config(str(out / "kubeconfigs" / "sim-0.yaml"))
        with api_client:
            core = kubernetes.client.CoreV1Api(api_client)
            deadline = time.monotonic() + 20
            while len(nodes := core.list_node().items) < 4:
                assert time.monotonic() < deadline, f"{len(nodes)} nodes"
                time.sleep(0.1)
            pool = core.list_node(label_selector="nvidia.com/gpu.present=true").items
        assert [n.metadata.name for n in pool] == ["sim-0-node-2", "sim-0-node-3"]
        assert {n.status.allocatable["nvidia.com/gpu"] for n in pool} == {"4"}
        assert {(t.key, t.value, t.effect) for n in pool for t in n.spec.taints} == {
            ("nvidia.com/gpu", "present", "NoSchedule")
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
