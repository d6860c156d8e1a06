"""The state of one simulated cluster, shared by its HTTP front, controllers and kubelet."""

from __future__ import annotations

import copy
import uuid
from collections import deque
from dataclasses import dataclass, field

from fleet.sim.auth import ClusterAuth
from fleet.sim.model import JsonObject, ResourceType
from fleet.sim.resources import ResourceRegistry
from fleet.sim.store import Store, now_rfc3339


@dataclass(frozen=True)
class SimConfig:
    """Behaviour knobs of a simulated cluster (the same for every cluster of a fleet unless set)."""

    nodes: int = 2
    # Nodes of a GPU pool beside those: nvidia.com/gpu capacity, the pool's labels and taint
    # (fleet.sim.kubelet.nodes). 0: the last of the ``nodes`` has GPUs, untainted.
    gpu_nodes: int = 0
    # How long a container with no command takes to become ready once started (seconds).
    ready_delay: float = 0.2
    # How long an image pull "takes" before a container starts (seconds).
    pull_delay: float = 0.0
    # Watch history kept per cluster; older resourceVersions get 410 Gone.
    history: int = 20_000
    # Seconds of quiet after which a watch that allows bookmarks gets a BOOKMARK event.
    bookmark_interval: float = 5.0


#: How many container runs' outputs a cluster remembers (``ClusterState.outputs``), newest kept.
OUTPUTS_KEPT = 20_000


@dataclass(frozen=True)
class ContainerOutput:
    """What one run of a container wrote (stdout and stderr merged, as its log), remembered after its pod
    is gone: what a client that followed the log must have seen."""

    namespace: str
    pod: str
    container: str
    labels: dict[str, str]
    lines: tuple[str, ...]  # the first ``fleet.sim.kubelet.logs.WRITTEN_LINES_KEPT`` lines
    count: int  # every line, the partial last one included


@dataclass
class ClusterState:
    """Everything one simulated cluster owns. Lives on the sim's trio thread."""

    name: str
    config: SimConfig = field(default_factory=SimConfig)
    store: Store = field(init=False)
    resources: ResourceRegistry = field(default_factory=ResourceRegistry)
    # The credentials the cluster accepts; the API's TokenRequest and TokenReview use them too.
    auth: ClusterAuth = field(default_factory=ClusterAuth)
    # ``Faults.notready`` (switched with the cluster's faults): containers that start while it is set never
    # pass readiness; ``held_unready`` names their pods ("namespace/name"), for whoever asked for the fault.
    unready: bool = False
    held_unready: list[str] = field(default_factory=list)
    # The output of every container run that ended (real containers), oldest first.
    outputs: deque[ContainerOutput] = field(default_factory=lambda: deque(maxlen=OUTPUTS_KEPT))

    def __post_init__(self) -> None:
        self.store = Store(history=self.config.history)

    def rt(self, group: str, kind: str) -> ResourceType:
        """A built-in or CRD-served resource type by group and kind (must exist)."""
        rt = self.resources.by_kind(group, kind)
        if rt is None:
            raise KeyError(f"{kind}.{group} is not served")
        return rt

    def record_event(
        self,
        involved: JsonObject,
        type_: str,
        reason: str,
        message: str,
        component: str = "fleet-sim",
    ) -> JsonObject:
        """Create a core/v1 Event about ``involved`` (visible to `kubectl get events` and the Events API).

        Repeated events (same object, reason and message) bump ``count`` instead of piling up.
        """
        meta = involved.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        events = self.rt("", "Event")
        uid = meta.get("uid", "")
        name = f"{meta.get('name', 'unknown')}.{abs(hash((uid, reason, message))) % 10**16:016x}"
        now = now_rfc3339()
        existing = self.store.get(events, namespace, name)
        if existing is not None:
            updated = copy.deepcopy(existing)
            updated["count"] = updated.get("count", 1) + 1
            updated["lastTimestamp"] = now
            return self.store.update(events, updated, check_version=False)
        event: JsonObject = {
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", ""),
                "kind": involved.get("kind", ""),
                "name": meta.get("name", ""),
                "namespace": meta.get("namespace", ""),
                "uid": uid,
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": None,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": f"{component}-{uuid.uuid5(uuid.NAMESPACE_DNS, self.name).hex[:8]}",
        }
        return self.store.create(events, event)
