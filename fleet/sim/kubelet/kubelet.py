"""The kubelet and scheduler of one simulated cluster: nodes, binding, and a worker per bound pod.

It follows the store's change feed (never polling): a new pod is scheduled, a bound pod gets a
``PodWorker``, a pod with a deletionTimestamp is stopped and then removed.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from fleet.sim.cluster import ClusterState
from fleet.sim.kubelet.lifecycle import PodWorker
from fleet.sim.kubelet.nodes import host_ip, node_objects, schedule
from fleet.sim.model import JsonObject, StatusError, WatchEvent
from fleet.sim.store import now_rfc3339

log = logging.getLogger(__name__)

_KUBELETS: dict[int, Kubelet] = {}


def kubelet_for(state: ClusterState) -> Kubelet | None:
    """The kubelet running for ``state``, if any (the log and exec endpoints look pods up here)."""
    return _KUBELETS.get(id(state))


class Kubelet:
    """Scheduler and kubelet of one cluster."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.pods = state.rt("", "Pod")
        self.nodes = state.rt("", "Node")
        self.workers: dict[str, PodWorker] = {}
        self.unschedulable: dict[tuple[str, str], str] = {}
        self._next_ip: dict[str, int] = {}
        self._sim_root: Path | None = None
        self._nursery: trio.Nursery | None = None

    def worker(self, namespace: str, name: str) -> PodWorker | None:
        """The worker of a pod that is bound and running here, by namespace and name."""
        pod = self.state.store.get(self.pods, namespace, name)
        return None if pod is None else self.workers.get(pod["metadata"].get("uid", ""))

    @property
    def sim_root(self) -> Path:
        """The sim's directory for pod sandboxes, node paths and claims (created on first real use)."""
        if self._sim_root is None:
            self._sim_root = Path(tempfile.mkdtemp(prefix=f"fleet-sim-{self.state.name}-"))
        return self._sim_root

    @contextmanager
    def _registered(self) -> Iterator[None]:
        _KUBELETS[id(self.state)] = self
        try:
            yield
        finally:
            _KUBELETS.pop(id(self.state), None)
            if self._sim_root is not None:
                shutil.rmtree(self._sim_root, ignore_errors=True)

    async def run(self) -> None:
        with self._registered():
            self._create_nodes()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                seen = self.state.store.resource_version
                for pod in list(self.state.store.list_objects(self.pods)):
                    self._on_pod("ADDED", pod)
                while True:
                    await self.state.store.wait_changed(seen)
                    try:
                        events = self.state.store.events_since(seen)
                    except StatusError:
                        # Fell behind the feed's history: resynchronise from the current objects.
                        seen = self.state.store.resource_version
                        pods = list(self.state.store.list_objects(self.pods))
                        alive = {p["metadata"].get("uid") for p in pods}
                        for uid, worker in list(self.workers.items()):
                            if uid not in alive:
                                worker.force_removed()
                        for pod in pods:
                            self._on_pod("MODIFIED", pod)
                        continue
                    if events:
                        seen = events[-1].resource_version
                    self._on_events(events)

    def _create_nodes(self) -> None:
        config = self.state.config
        for node in node_objects(self.state.name, config.nodes, config.gpu_nodes):
            if self.state.store.get(self.nodes, "", node["metadata"]["name"]) is None:
                self.state.store.create(self.nodes, node)

    def _on_events(self, events: list[WatchEvent]) -> None:
        retry = False
        for event in events:
            key = event.resource.key
            if key == "pods":
                retry |= self._on_pod(event.type, event.object)
            elif key == "nodes":
                retry = True
        if retry and self.unschedulable:
            for namespace, name in list(self.unschedulable):
                pod = self.state.store.get(self.pods, namespace, name)
                if pod is not None:
                    self._schedule(pod, retrying=True)

    def _on_pod(self, type_: str, pod: JsonObject) -> bool:
        """React to one pod change; True when it may have freed room on a node."""
        meta = pod["metadata"]
        key = (meta.get("namespace") or "default", meta["name"])
        uid = meta.get("uid", "")
        worker = self.workers.get(uid)
        if type_ == "DELETED":
            self.unschedulable.pop(key, None)
            if worker is not None:
                worker.force_removed()
            return True
        # The feed may be behind the store: a pod already removed (its DELETED event follows) or
        # replaced under the same name is not acted on; the store's copy is the one to act on.
        current = self.state.store.get(self.pods, *key)
        if current is None or current["metadata"].get("uid", "") != uid:
            return False
        pod, meta = current, current["metadata"]
        if worker is not None:
            if meta.get("deletionTimestamp"):
                worker.request_delete(meta.get("deletionGracePeriodSeconds"))
            return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        node = (pod.get("spec") or {}).get("nodeName")
        if meta.get("deletionTimestamp"):
            self.unschedulable.pop(key, None)
            self.state.store.remove(self.pods, *key)
            return False
        if not node:
            if self.unschedulable.get(key) != uid:
                self._schedule(pod, retrying=False)
            return False
        self.unschedulable.pop(key, None)
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return False
        self._start_worker(pod, node)
        return False

    def _schedule(self, pod: JsonObject, *, retrying: bool) -> None:
        meta = pod["metadata"]
        key = (meta.get("namespace") or "default", meta["name"])
        nodes = self.state.store.list_objects(self.nodes)
        chosen, message = schedule(pod, nodes, self.state.store.list_objects(self.pods))
        updated = copy.deepcopy(pod)
        if chosen is None:
            conditions = (pod.get("status") or {}).get("conditions") or []
            if retrying and any(c.get("message") == message for c in conditions):
                return
            self.unschedulable[key] = meta.get("uid", "")
            updated["status"] = {
                "phase": "Pending",
                "qosClass": (pod.get("status") or {}).get("qosClass", ""),
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                        "lastProbeTime": None,
                        "lastTransitionTime": now_rfc3339(),
                    }
                ],
            }
            self.state.store.update(self.pods, updated, check_version=False)
            self.state.record_event(updated, "Warning", "FailedScheduling", message, "default-scheduler")
            return
        self.unschedulable.pop(key, None)
        updated["spec"]["nodeName"] = chosen
        self.state.store.update(self.pods, updated, check_version=False)
        self.state.record_event(
            updated, "Normal", "Scheduled", f"Successfully assigned {key[0]}/{key[1]} to {chosen}", "default-scheduler"
        )

    def _start_worker(self, pod: JsonObject, node: str) -> None:
        prefix = f"{self.state.name}-node-"
        index = int(node[len(prefix) :]) if node.startswith(prefix) and node[len(prefix) :].isdigit() else 0
        n = self._next_ip.get(node, 1) % 250 + 1
        self._next_ip[node] = n
        worker = PodWorker(self.state, pod, host_ip(index), f"10.244.{index}.{n + 1}", lambda: self.sim_root)
        uid = pod["metadata"]["uid"]
        self.workers[uid] = worker
        assert self._nursery is not None
        self._nursery.start_soon(self._run_worker, worker, uid)

    async def _run_worker(self, worker: PodWorker, uid: str) -> None:
        try:
            await worker.run()
        finally:
            self.workers.pop(uid, None)
