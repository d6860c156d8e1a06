"""The kubelet of ``fleet.sim``: schedules pods to simulated nodes and runs them.

Containers without a command are virtual (running, and ready after ``SimConfig.ready_delay``); those
with a command run as real processes in a private mount namespace (``runtime``). The pod log and exec
endpoints live in ``endpoints``. Entry point: ``run_kubelet(state)``, run in each cluster's nursery.
"""

from __future__ import annotations

from fleet.sim.cluster import ClusterState
from fleet.sim.kubelet.kubelet import Kubelet, kubelet_for

__all__ = ["Kubelet", "kubelet_for", "run_kubelet"]


async def run_kubelet(state: ClusterState) -> None:
    """Run the kubelet and scheduler of ``state`` until cancelled."""
    await Kubelet(state).run()
