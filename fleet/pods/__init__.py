"""The pod step: building and merging the pod spec, file transfer (tar over exec), log following,
the outputs protocol, reattach and cleanup. Knows nothing of the engine.

``run_pod_task(client, task, context=PodRunContext(...))`` runs one ``PodTask`` on one cluster.
"""

from fleet.pods.identity import PodIdentity
from fleet.pods.models import Credentials, FileSidecar, InputFile, PodTask, Resources
from fleet.pods.outputs import Metric
from fleet.pods.runner import Detach, PodResult, PodRunContext, PodStepFailed, run_pod_task
from fleet.pods.tracker import PodGone

__all__ = [
    "Credentials",
    "Detach",
    "FileSidecar",
    "InputFile",
    "Metric",
    "PodGone",
    "PodIdentity",
    "PodResult",
    "PodRunContext",
    "PodStepFailed",
    "PodTask",
    "Resources",
    "run_pod_task",
]
