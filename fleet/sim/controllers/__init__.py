"""The controllers of a simulated cluster: they make readiness real, so that waiting on it means something.

``run_controllers(state)`` runs them all in one trio task per cluster that follows the store's change
feed (``Store.events_since`` / ``Store.wait_changed``), never polling; an idle cluster costs one parked
task. They write through the ``Store`` API directly and record Events with ``ClusterState.record_event``.

- ``deployment``: a ReplicaSet per pod template, RollingUpdate (maxSurge/maxUnavailable) and Recreate,
  revisions and history pruning, paused, conditions Available and Progressing (ProgressDeadlineExceeded).
- ``replicaset``: pods to match ``spec.replicas``; ready/available counts (minReadySeconds).
- ``statefulset``: ordered pods ``<name>-<i>``, ControllerRevisions, rolling updates with a partition.
- ``daemonset``: one pod per matching Node (``spec.nodeName`` preset), rolling updates.
- ``job``: pods per completions/parallelism, backoffLimit, activeDeadlineSeconds, conditions as
  Kubernetes 1.31 sets them, ttlSecondsAfterFinished.
- ``cronjob``: Jobs on a cron schedule (or ``@every 10s``), concurrencyPolicy, history limits.
- ``garbage``: garbage collection by ownerReferences (Background, Foreground, Orphan).
- ``namespace``: the default namespaces, a ``default`` ServiceAccount per namespace, namespace deletion.
- ``crd``: CRDs get NamesAccepted/Established; their objects are deleted with them.
- ``services``: Services get a cluster IP and (LoadBalancer) an ingress IP; PVCs are bound to a new PV.
- ``disruption``: PodDisruptionBudget status (healthy, desired, disruptionsAllowed) for evictions.

The pods' own status (scheduling, Running, Ready) belongs to the kubelet (``fleet.sim.kubelet``); a
running pod these controllers delete gets a deletionTimestamp and the kubelet removes it.

Bootstrap: the default namespaces (``default``, ``kube-system``, ``kube-public``, ``kube-node-lease``)
are created by ``bootstrap(state)``, which ``SimFleet`` calls when it creates a cluster, before
serving it; ``run_controllers`` calls it too (it is idempotent), before it reports started.
"""

from __future__ import annotations

import trio

from fleet.sim.cluster import ClusterState
from fleet.sim.controllers.crd import CrdController
from fleet.sim.controllers.cronjob import CronJobController
from fleet.sim.controllers.daemonset import DaemonSetController
from fleet.sim.controllers.deployment import DeploymentController
from fleet.sim.controllers.disruption import DisruptionController
from fleet.sim.controllers.garbage import GarbageCollector
from fleet.sim.controllers.job import JobController
from fleet.sim.controllers.manager import ControllerFactory, ControllerManager
from fleet.sim.controllers.namespace import NamespaceController, bootstrap
from fleet.sim.controllers.replicaset import ReplicaSetController
from fleet.sim.controllers.services import ServiceController, VolumeBinder
from fleet.sim.controllers.statefulset import StatefulSetController

__all__ = ["ALL_CONTROLLERS", "bootstrap", "run_controllers"]

ALL_CONTROLLERS: tuple[ControllerFactory, ...] = (
    NamespaceController,
    CrdController,
    DeploymentController,
    ReplicaSetController,
    StatefulSetController,
    DaemonSetController,
    JobController,
    CronJobController,
    ServiceController,
    VolumeBinder,
    DisruptionController,
    GarbageCollector,
)


async def run_controllers(
    state: ClusterState, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run every controller of ``state`` until cancelled (``nursery.start`` waits for the bootstrap)."""
    bootstrap(state)
    await ControllerManager(state, ALL_CONTROLLERS).run(task_status=task_status)
