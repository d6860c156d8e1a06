"""The resources of Kubernetes' own GA APIs, known without asking the cluster.

A kind's plural and scope are part of the API's contract: ``apps/v1`` ``Deployment`` is ``deployments``,
namespaced, on every cluster that serves ``apps/v1``. Resolving these from this table spares every
cluster of a run its discovery requests (``/api/v1`` alone is the largest answer an apply would
otherwise wait for). An entry is used only when the cluster's ``/version`` says it serves it (the
Kubernetes minor version the kind went GA in); for a cluster whose version is unknown or older, and for
every other kind, ``fleet.kube.discovery`` asks the cluster.
``tests/kube/test_builtin_resources.py`` checks the table against the cluster's discovery.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Builtin(NamedTuple):
    plural: str
    namespaced: bool
    #: The Kubernetes 1.x minor version this group-version first served the kind in.
    since: int


def _group(
    api_version: str, since: int, *kinds: tuple[str, str, bool] | tuple[str, str, bool, int]
) -> dict[tuple[str, str], Builtin]:
    table = {}
    for entry in kinds:
        kind, plural, namespaced = entry[:3]
        table[(api_version, kind)] = Builtin(plural, namespaced, entry[3] if len(entry) == 4 else since)
    return table


NAMESPACED, CLUSTER = True, False

BUILTIN: dict[tuple[str, str], Builtin] = {
    **_group(
        "v1",
        0,
        ("ConfigMap", "configmaps", NAMESPACED),
        ("Endpoints", "endpoints", NAMESPACED),
        ("Event", "events", NAMESPACED),
        ("LimitRange", "limitranges", NAMESPACED),
        ("Namespace", "namespaces", CLUSTER),
        ("Node", "nodes", CLUSTER),
        ("PersistentVolume", "persistentvolumes", CLUSTER),
        ("PersistentVolumeClaim", "persistentvolumeclaims", NAMESPACED),
        ("Pod", "pods", NAMESPACED),
        ("PodTemplate", "podtemplates", NAMESPACED),
        ("ReplicationController", "replicationcontrollers", NAMESPACED),
        ("ResourceQuota", "resourcequotas", NAMESPACED),
        ("Secret", "secrets", NAMESPACED),
        ("Service", "services", NAMESPACED),
        ("ServiceAccount", "serviceaccounts", NAMESPACED),
    ),
    **_group(
        "apps/v1",
        9,
        ("ControllerRevision", "controllerrevisions", NAMESPACED),
        ("DaemonSet", "daemonsets", NAMESPACED),
        ("Deployment", "deployments", NAMESPACED),
        ("ReplicaSet", "replicasets", NAMESPACED),
        ("StatefulSet", "statefulsets", NAMESPACED),
    ),
    **_group("batch/v1", 2, ("Job", "jobs", NAMESPACED), ("CronJob", "cronjobs", NAMESPACED, 21)),
    **_group("autoscaling/v1", 2, ("HorizontalPodAutoscaler", "horizontalpodautoscalers", NAMESPACED)),
    **_group("autoscaling/v2", 23, ("HorizontalPodAutoscaler", "horizontalpodautoscalers", NAMESPACED)),
    **_group("policy/v1", 21, ("PodDisruptionBudget", "poddisruptionbudgets", NAMESPACED)),
    **_group(
        "networking.k8s.io/v1",
        19,
        ("Ingress", "ingresses", NAMESPACED),
        ("IngressClass", "ingressclasses", CLUSTER),
        ("NetworkPolicy", "networkpolicies", NAMESPACED, 7),
    ),
    **_group(
        "rbac.authorization.k8s.io/v1",
        8,
        ("ClusterRole", "clusterroles", CLUSTER),
        ("ClusterRoleBinding", "clusterrolebindings", CLUSTER),
        ("Role", "roles", NAMESPACED),
        ("RoleBinding", "rolebindings", NAMESPACED),
    ),
    **_group(
        "storage.k8s.io/v1",
        6,
        ("StorageClass", "storageclasses", CLUSTER),
        ("VolumeAttachment", "volumeattachments", CLUSTER, 13),
        ("CSINode", "csinodes", CLUSTER, 17),
        ("CSIDriver", "csidrivers", CLUSTER, 18),
        ("CSIStorageCapacity", "csistoragecapacities", NAMESPACED, 24),
    ),
    **_group("scheduling.k8s.io/v1", 14, ("PriorityClass", "priorityclasses", CLUSTER)),
    **_group("coordination.k8s.io/v1", 14, ("Lease", "leases", NAMESPACED)),
    **_group("apiextensions.k8s.io/v1", 16, ("CustomResourceDefinition", "customresourcedefinitions", CLUSTER)),
    **_group(
        "admissionregistration.k8s.io/v1",
        16,
        ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations", CLUSTER),
        ("ValidatingWebhookConfiguration", "validatingwebhookconfigurations", CLUSTER),
        ("ValidatingAdmissionPolicy", "validatingadmissionpolicies", CLUSTER, 30),
        ("ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", CLUSTER, 30),
    ),
    **_group("discovery.k8s.io/v1", 21, ("EndpointSlice", "endpointslices", NAMESPACED)),
    **_group("certificates.k8s.io/v1", 19, ("CertificateSigningRequest", "certificatesigningrequests", CLUSTER)),
    **_group("node.k8s.io/v1", 20, ("RuntimeClass", "runtimeclasses", CLUSTER)),
    **_group("events.k8s.io/v1", 19, ("Event", "events", NAMESPACED)),
    **_group("apiregistration.k8s.io/v1", 10, ("APIService", "apiservices", CLUSTER)),
    **_group(
        "flowcontrol.apiserver.k8s.io/v1",
        29,
        ("FlowSchema", "flowschemas", CLUSTER),
        ("PriorityLevelConfiguration", "prioritylevelconfigurations", CLUSTER),
    ),
}

_VERSION = re.compile(r"v?1\.(\d+)(?:\D|$)")


def minor_version(git_version: str | None) -> int | None:
    """``29`` for ``v1.29.1-gke.1589018`` (and any other vendor suffix); ``None`` when it does not read as 1.x."""
    match = _VERSION.match(git_version or "")
    return int(match.group(1)) if match else None


def builtin(api_version: str, kind: str, server_version: str | None) -> Builtin | None:
    """The table's entry for ``kind`` in ``api_version`` if a cluster of ``server_version`` serves it."""
    entry = BUILTIN.get((api_version, kind))
    minor = minor_version(server_version)
    if entry is None or minor is None or minor < entry.since:
        return None
    return entry
