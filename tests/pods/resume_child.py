"""Runs one pod step in its own process, so that a test can SIGKILL fleet in the middle of it.

Usage: python resume_child.py KUBECONFIG CONTEXT NAMESPACE RUN_ID ARTIFACT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from fleet.artifacts import LocalArtifactStore
from fleet.kube.client import KubeClient
from fleet.pods.models import PodTask
from fleet.pods.runner import PodRunContext, run_pod_task

RESUMABLE_STEP = {
    "image": "busybox",
    "commands": ["sleep 2", "cp data.txt out.txt", """echo '::{"outputs": {"done": true}}::'"""],
    "inputFiles": {"data.txt": "survives"},
    "outputFiles": ["out.txt"],
}


async def main(kubeconfig: str, context: str, namespace: str, run_id: str, artifacts: str) -> None:
    with KubeClient.from_kubeconfig(kubeconfig, context=context) as client:
        task = PodTask.model_validate({**RESUMABLE_STEP, "namespace": namespace})
        ctx = PodRunContext(
            run_id=run_id, cluster=context, step_id="resumable", artifacts=LocalArtifactStore(Path(artifacts))
        )
        await run_pod_task(client, task, context=ctx)


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:6])
