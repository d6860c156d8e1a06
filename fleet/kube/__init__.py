"""One cluster: client factory, discovery cache, apply (SSA), get, patch, restart, delete, wait,
readiness (kstatus), watch helpers and the retry policy. Knows nothing of playbooks or the engine."""

from fleet.kube.api_errors import ConnectFailed
from fleet.kube.client import ExecResult, KubeClient, WatchEvent, resource_path, shared_limiter
from fleet.kube.discovery import Discovery, ResourceInfo
from fleet.kube.objects import JsonObject, ObjectRef
from fleet.kube.readiness import Readiness, Status

__all__ = [
    "ConnectFailed",
    "Discovery",
    "ExecResult",
    "JsonObject",
    "KubeClient",
    "ObjectRef",
    "Readiness",
    "ResourceInfo",
    "Status",
    "WatchEvent",
    "resource_path",
    "shared_limiter",
]
