"""The simulated nodes of a cluster (ordinary ones, and a tainted GPU pool) and the scheduler that binds
pods to them: cordons, taints and tolerations, node selectors and affinity, and requests against what
is allocatable, with kube-scheduler's messages when nothing fits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from fleet.sim.kubelet.quantity import parse_quantity
from fleet.sim.model import JsonObject
from fleet.sim.store import now_rfc3339

GPU = "nvidia.com/gpu"
NODE_CAPACITY: Mapping[str, str] = {
    "cpu": "8",
    "memory": "32Gi",
    "pods": "110",
    "ephemeral-storage": "100Gi",
}
GPUS_PER_GPU_NODE = "4"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
#: What the nodes of a GPU pool carry (``SimConfig.gpu_nodes``), as the NVIDIA GPU operator and GKE label
#: and taint them: only a pod that tolerates the taint runs there.
GPU_POOL_LABELS: Mapping[str, str] = {
    "nvidia.com/gpu.present": "true",
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    "fleet.sim/node-pool": "gpu",
}
GPU_POOL_TAINT: Mapping[str, str] = {"key": GPU, "value": "present", "effect": "NoSchedule"}


def node_name(cluster: str, index: int) -> str:
    return f"{cluster}-node-{index}"


def host_ip(index: int) -> str:
    return f"192.168.0.{10 + index}"


def node_objects(cluster: str, nodes: int, gpu_nodes: int) -> list[JsonObject]:
    """The nodes of a cluster: ``nodes`` ordinary ones, then ``gpu_nodes`` of a tainted GPU pool. Without
    a GPU pool the last ordinary node carries GPUs, untainted (one node of a small cluster shares them)."""
    shared_gpu = nodes - 1 if gpu_nodes == 0 else None
    return [
        *(node_object(cluster, i, gpus=i == shared_gpu) for i in range(nodes)),
        *(node_object(cluster, i, gpus=True, pool=True) for i in range(nodes, nodes + gpu_nodes)),
    ]


def node_object(cluster: str, index: int, *, gpus: bool = False, pool: bool = False) -> JsonObject:
    """A Ready node; with ``gpus`` it has ``nvidia.com/gpu`` (label ``nvidia.com/gpu.present``), and in the
    GPU ``pool`` it also has the pool's labels and taint."""
    name = node_name(cluster, index)
    capacity = dict(NODE_CAPACITY)
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node-role.kubernetes.io/worker": "",
        "topology.kubernetes.io/zone": f"{cluster}-zone-{index % 3}",
    }
    spec: JsonObject = {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]}
    if gpus:
        capacity[GPU] = GPUS_PER_GPU_NODE
        labels["nvidia.com/gpu.present"] = "true"
    if pool:
        labels.update(GPU_POOL_LABELS)
        spec["taints"] = [dict(GPU_POOL_TAINT)]
    now = now_rfc3339()
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                },
                *(
                    {
                        "type": kind,
                        "status": "False",
                        "reason": f"KubeletHas{reason}",
                        "message": f"kubelet has {reason.lower()}",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                    for kind, reason in (
                        ("MemoryPressure", "SufficientMemory"),
                        ("DiskPressure", "NoDiskPressure"),
                        ("PIDPressure", "SufficientPID"),
                    )
                ),
            ],
            "addresses": [
                {"type": "InternalIP", "address": host_ip(index)},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "fleet.sim",
                "kernelVersion": "sim",
                "containerRuntimeVersion": "fleet-sim://1.0",
                "kubeletVersion": "v1.32.0",
                "kubeProxyVersion": "v1.32.0",
                "machineID": name,
                "systemUUID": name,
                "bootID": name,
            },
        },
    }


def _requests(container: Mapping[str, Any]) -> dict[str, Decimal]:
    """A container's requests; a limit without a request counts as the request (API defaulting)."""
    resources = container.get("resources") or {}
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {k: parse_quantity(v) for k, v in merged.items()}


def pod_requests(spec: Mapping[str, Any]) -> dict[str, Decimal]:
    """What a pod needs on a node: its containers and sidecars together, or its largest init container."""
    total: dict[str, Decimal] = {}
    for c in spec.get("containers") or []:
        _add(total, _requests(c))
    sidecars: dict[str, Decimal] = {}
    for c in spec.get("initContainers") or []:
        req = _requests(c)
        if c.get("restartPolicy") == "Always":
            _add(sidecars, req)
            continue
        for k, v in req.items():
            total[k] = max(total.get(k, Decimal(0)), v + sidecars.get(k, Decimal(0)))
    _add(total, sidecars)
    _add(total, {"pods": Decimal(1)})
    return total


def _add(into: dict[str, Decimal], more: Mapping[str, Decimal]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, Decimal(0)) + v


def _selector_matches(spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    selector: Mapping[str, str] = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = affinity.get("nodeSelectorTerms") or []
    return not terms or any(_term_matches(t, labels) for t in terms)


def _term_matches(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for expr in term.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    return True


def _tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' rule: the effect matches (or is empty), and the key matches with ``Exists`` (an empty key
    with ``Exists`` tolerates every taint) or key and value match with ``Equal`` (the default)."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration.get("key") == taint.get("key")
    return toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(spec: Mapping[str, Any], taints: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first taint that keeps the pod off a node (NoSchedule, NoExecute) and that it does not tolerate."""
    tolerations = spec.get("tolerations") or []
    for taint in taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(_tolerates(t, taint) for t in tolerations):
            return taint
    return None


def schedule(pod: JsonObject, nodes: Iterable[JsonObject], bound: Iterable[JsonObject]) -> tuple[str | None, str]:
    """Pick a node for ``pod``: (node name, "") or (None, the scheduler's message).

    ``bound`` are the pods already on nodes; those not finished use up their requests.
    """
    spec = pod.get("spec") or {}
    nodes = list(nodes)
    used: dict[str, dict[str, Decimal]] = {n["metadata"]["name"]: {} for n in nodes}
    for other in bound:
        node = (other.get("spec") or {}).get("nodeName")
        if node in used and (other.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            _add(used[node], pod_requests(other.get("spec") or {}))
    needed = pod_requests(spec)
    reasons: Counter[str] = Counter()
    for node in nodes:
        name = node["metadata"]["name"]
        node_spec = node.get("spec") or {}
        cordoned = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
        if node_spec.get("unschedulable") and untolerated(spec, [cordoned]):
            reasons["node(s) were unschedulable"] += 1
            continue
        taint = untolerated(spec, node_spec.get("taints") or [])
        if taint is not None:
            value = f": {taint['value']}" if taint.get("value") else ""
            reasons[f"node(s) had untolerated taint {{{taint.get('key')}{value}}}"] += 1
            continue
        if not _selector_matches(spec, node["metadata"].get("labels") or {}):
            reasons["node(s) didn't match Pod's node affinity/selector"] += 1
            continue
        allocatable = {k: parse_quantity(v) for k, v in node["status"].get("allocatable", {}).items()}
        have = used[name]
        short = [k for k, v in needed.items() if v > 0 and have.get(k, Decimal(0)) + v > allocatable.get(k, Decimal(0))]
        if short:
            for k in short:
                reasons["Too many pods" if k == "pods" else f"Insufficient {k}"] += 1
            continue
        return name, ""
    count = len(nodes)
    why = ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))  # as kube-scheduler sorts them
    return None, (
        f"0/{count} nodes are available: {why}. preemption: 0/{count} nodes are available: "
        f"{count} Preemption is not helpful for scheduling."
    )
