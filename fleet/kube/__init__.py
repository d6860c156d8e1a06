"""One cluster: client factory, discovery cache, apply (SSA), get, patch, restart, delete, wait,
readiness (kstatus), watch helpers and the retry policy. Knows nothing of playbooks or the engine.

The library API (async, one cluster at a time)::

    client = KubeClient.from_kubeconfig("kubeconfig.yaml", context="prod-eu")
    applied = await apply(client, text, namespace="shop", wait_until_ready=timedelta(minutes=5))
    validate_manifests(load_manifests(text))  # offline, the newest schemas (apply checks again per cluster)
    pods = await get(client, "pods", namespace="shop", label_selector="app=web", jsonpath=".status.phase")
    await patch(client, "Deployment", "web", {"spec": {"replicas": 3}}, namespace="shop")
    await restart(client, "deploy", "web", namespace="shop")
    await delete(client, "ConfigMap", "old", namespace="shop", propagation_policy="Foreground")
    await wait_for(client, "Deployment", "web", condition_check("Available"), namespace="shop", timeout=60)
"""

from fleet.kube.api_errors import ConnectFailed
from fleet.kube.apply import AppliedObject, apply
from fleet.kube.client import KubeClient
from fleet.kube.delete import Deleted, Propagation, delete
from fleet.kube.discovery import Discovery, ResourceInfo
from fleet.kube.get import FetchType, GetResult, get
from fleet.kube.limiters import RunLimiters
from fleet.kube.manifests import Manifest, load_manifest_file, load_manifests
from fleet.kube.objects import JsonObject, ObjectRef
from fleet.kube.patch import PatchType, patch
from fleet.kube.paths import resource_path
from fleet.kube.readiness import Readiness, Status, compute
from fleet.kube.restart import restart
from fleet.kube.schemas import validate_manifests
from fleet.kube.selection import KindOptions, ListOptions
from fleet.kube.types import ExecResult, WatchEvent
from fleet.kube.wait import Check, condition_check, gone_check, jsonpath_check, ready_check, wait_for

__all__ = [
    "AppliedObject",
    "Check",
    "ConnectFailed",
    "Deleted",
    "Discovery",
    "ExecResult",
    "FetchType",
    "GetResult",
    "JsonObject",
    "KindOptions",
    "KubeClient",
    "ListOptions",
    "Manifest",
    "ObjectRef",
    "PatchType",
    "Propagation",
    "Readiness",
    "ResourceInfo",
    "RunLimiters",
    "Status",
    "WatchEvent",
    "apply",
    "compute",
    "condition_check",
    "delete",
    "get",
    "gone_check",
    "jsonpath_check",
    "load_manifest_file",
    "load_manifests",
    "patch",
    "ready_check",
    "resource_path",
    "restart",
    "validate_manifests",
    "wait_for",
]
