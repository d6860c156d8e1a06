"""Runs one pod step in its own process, so that a test can SIGKILL fleet in the middle of it.

Usage: python resume_child.py KUBECONFIG CONTEXT NAMESPACE RUN_ID ARTIFACT_DIR [keep]

``keep`` sets ``delete: false`` (a cancel must delete the pod all the same) and makes the pod run for a
minute, so that the test's Ctrl-C always lands while it runs (with ``sleep 2`` a loaded machine could see
the step end first).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import trio

from fleet.artifacts import LocalArtifactStore
from fleet.kube.client import KubeClient
from fleet.pods.models import PodTask
from fleet.pods.runner import Detach, PodRunContext, run_pod_task

COMMANDS = ["sleep 2", "cp data.txt out.txt", """echo '::{"outputs": {"done": true}}::'"""]
RESUMABLE_STEP = {
    "image": "busybox",
    "commands": COMMANDS,
    "inputFiles": {"data.txt": "survives"},
    "outputFiles": ["out.txt"],
}


async def main(kubeconfig: str, context: str, namespace: str, run_id: str, artifacts: str, keep: str = "") -> None:
    # An empty context: the kubeconfig's current one (a real cluster without FLEET_TEST_CONTEXT).
    with KubeClient.from_kubeconfig(kubeconfig, context=context or None) as client:
        step = {**RESUMABLE_STEP, "namespace": namespace, "delete": keep != "keep"}
        if keep == "keep":
            step["commands"] = ["sleep 60", *COMMANDS[1:]]
        task = PodTask.model_validate(step)
        detach = Detach()
        store = LocalArtifactStore(Path(artifacts))
        cluster = context or "cluster"  # as tests/pods/conftest.py names it
        ctx = PodRunContext(run_id=run_id, cluster=cluster, step_id="resumable", artifacts=store, detach=detach)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_sigterm, detach, nursery.cancel_scope)
            await run_pod_task(client, task, context=ctx)
            nursery.cancel_scope.cancel()


async def stop_on_sigterm(detach: Detach, scope: trio.CancelScope) -> None:
    """How fleet stops on SIGTERM: detach from the pod (so a resume picks it up), then cancel."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            detach.detach()
            scope.cancel()
            return


if __name__ == "__main__":
    # A shell started in the background (nohup, `&` in a script: how CI may run the suite) hands its
    # children SIGINT ignored, and Python then leaves it so: give this child a terminal's Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    trio.run(main, *sys.argv[1:7])
