"""The resources a simulated cluster serves: the built-in kinds, plus those its CRDs add."""

from __future__ import annotations

from collections.abc import Iterable

from fleet.sim.model import JsonObject, ResourceType

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def _rt(
    group: str,
    version: str,
    resource: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    sub: tuple[str, ...] = ("status",),
    categories: tuple[str, ...] = (),
    verbs: tuple[str, ...] = _ALL_VERBS,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        resource=resource,
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        singular=kind.lower(),
        subresources=sub,
        verbs=verbs,
    )


BUILTIN: tuple[ResourceType, ...] = (
    # core/v1
    _rt("", "v1", "namespaces", "Namespace", False, ("ns",), ("status", "finalize")),
    _rt(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        ("po",),
        ("status", "log", "exec", "attach", "eviction", "ephemeralcontainers"),
        ("all",),
    ),
    _rt("", "v1", "services", "Service", True, ("svc",), ("status",), ("all",)),
    _rt("", "v1", "configmaps", "ConfigMap", True, ("cm",), ()),
    _rt("", "v1", "secrets", "Secret", True, (), ()),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",), ("token",)),
    _rt("", "v1", "events", "Event", True, ("ev",), ()),
    _rt("", "v1", "nodes", "Node", False, ("no",), ("status",)),
    _rt("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), ("status",)),
    _rt("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), ("status",)),
    _rt("", "v1", "endpoints", "Endpoints", True, ("ep",), ()),
    _rt("", "v1", "limitranges", "LimitRange", True, ("limits",), ()),
    _rt("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",), ("status",)),
    _rt("", "v1", "replicationcontrollers", "ReplicationController", True, ("rc",), ("status", "scale"), ("all",)),
    _rt("", "v1", "podtemplates", "PodTemplate", True, (), ()),
    # apps/v1
    _rt("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status", "scale"), ("all",)),
    _rt("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("status", "scale"), ("all",)),
    _rt("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("status", "scale"), ("all",)),
    _rt("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("status",), ("all",)),
    _rt("apps", "v1", "controllerrevisions", "ControllerRevision", True, (), ()),
    # batch/v1
    _rt("batch", "v1", "jobs", "Job", True, (), ("status",), ("all",)),
    _rt("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("status",), ("all",)),
    # rbac.authorization.k8s.io/v1
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role", True, (), ()),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, (), ()),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, (), ()),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, (), ()),
    # apiextensions.k8s.io/v1
    _rt(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        ("status",),
    ),
    # reviews: answered at once, never stored (fleet/sim/api_reviews.py)
    _rt("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, (), (), verbs=("create",)),
    _rt("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, (), (), verbs=("create",)),
    _rt(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        (),
        (),
        verbs=("create",),
    ),
    _rt("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False, (), (), verbs=("create",)),
    # others kubectl and fleet touch
    _rt("coordination.k8s.io", "v1", "leases", "Lease", True, (), ()),
    _rt("events.k8s.io", "v1", "events", "Event", True, ("ev",), ()),
    _rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)),
    _rt("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), ("status",)),
    _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",), ()),
    _rt("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",), ()),
    _rt(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        ("hpa",),
        ("status",),
        ("all",),
    ),
    _rt("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",), ()),
)


class ResourceRegistry:
    """Lookup of served resources by (group, plural) and by (group, kind), per cluster."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN) -> None:
        self._by_resource: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self._from_crd: dict[str, list[ResourceType]] = {}
        for rt in types:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._by_resource[(rt.group, rt.version, rt.resource)] = rt
        self._by_kind.setdefault((rt.group, rt.kind), rt)

    def remove(self, rt: ResourceType) -> None:
        self._by_resource.pop((rt.group, rt.version, rt.resource), None)
        if self._by_kind.get((rt.group, rt.kind)) == rt:
            del self._by_kind[(rt.group, rt.kind)]

    def lookup(self, group: str, version: str, resource: str) -> ResourceType | None:
        return self._by_resource.get((group, version, resource))

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, kind))

    def by_api_version(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        rt = self._by_kind.get((group, kind))
        return rt if rt is not None and rt.version == version else None

    def all(self) -> list[ResourceType]:
        return list(self._by_resource.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Served versions per group, preferred version first."""
        out: dict[str, list[str]] = {}
        for group, version, _ in self._by_resource:
            versions = out.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for (g, v, _), rt in self._by_resource.items() if g == group and v == version]

    # -- CustomResourceDefinitions -------------------------------------------------------------------

    def set_crd(self, crd: JsonObject) -> list[ResourceType]:
        """Serve the resources a CRD defines (replacing what an earlier version of it served)."""
        name = crd["metadata"]["name"]
        self.remove_crd(name)
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        types: list[ResourceType] = []
        for version in spec.get("versions", []):
            if not version.get("served", True):
                continue
            sub = tuple(version.get("subresources", {}) or {})
            rt = ResourceType(
                group=spec["group"],
                version=version["name"],
                resource=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames", ())),
                categories=tuple(names.get("categories", ())),
                singular=names.get("singular", names["kind"].lower()),
                subresources=sub,
            )
            types.append(rt)
        # The storage version is the preferred one for lookups by kind.
        types.sort(key=lambda rt: not _is_storage(spec, rt.version))
        for rt in types:
            self.add(rt)
        self._from_crd[name] = types
        return types

    def remove_crd(self, name: str) -> None:
        for rt in self._from_crd.pop(name, []):
            self.remove(rt)


def _is_storage(spec: JsonObject, version: str) -> bool:
    return any(v.get("name") == version and v.get("storage") for v in spec.get("versions", []))
