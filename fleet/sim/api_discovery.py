"""Discovery documents: ``/version``, ``/api``, ``/apis``, and the resource list of each group version.

Everything is derived from the cluster's ``ResourceRegistry`` (built-in kinds plus those its CRDs
add). kubectl asks for aggregated discovery first; it accepts the plain documents served here (their
content type says so) and then reads each group version's resource list.
"""

from __future__ import annotations

import hashlib

from fleet.sim.model import JsonObject, ResourceType
from fleet.sim.resources import ResourceRegistry

KUBERNETES_VERSION = "v1.32.0"

# Subresource name -> (group, version, kind, verbs) of what it serves; "" group/version = the parent's.
_SUBRESOURCES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "status": ("", "", "", ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "log": ("", "", "Pod", ("get",)),
    "exec": ("", "", "PodExecOptions", ("create", "get")),
    "attach": ("", "", "PodAttachOptions", ("create", "get")),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "ephemeralcontainers": ("", "", "", ("get", "patch", "update")),
    "finalize": ("", "", "Namespace", ("update",)),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
}


def version_info() -> JsonObject:
    major, minor, _ = KUBERNETES_VERSION.lstrip("v").split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"{KUBERNETES_VERSION}+fleet-sim",
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> JsonObject:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, versions: list[str]) -> JsonObject:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: ResourceRegistry) -> JsonObject:
    groups = [_group(g, vs) for g, vs in sorted(registry.group_versions().items()) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: ResourceRegistry, group: str) -> JsonObject | None:
    versions = registry.group_versions().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def _storage_hash(rt: ResourceType) -> str:
    return hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).hexdigest()[:12]


def _resource_entries(rt: ResourceType) -> list[JsonObject]:
    main: JsonObject = {
        "name": rt.resource,
        "singularName": rt.singular or rt.kind.lower(),
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
        "storageVersionHash": _storage_hash(rt),
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    entries = [main]
    for sub in rt.subresources:
        group, version, kind, verbs = _SUBRESOURCES.get(sub, ("", "", "", ("get", "patch", "update")))
        entry: JsonObject = {
            "name": f"{rt.resource}/{sub}",
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": kind or rt.kind,
            "verbs": list(verbs),
        }
        if group:
            entry["group"] = group
            entry["version"] = version
        entries.append(entry)
    return entries


def resource_list(registry: ResourceRegistry, group: str, version: str) -> JsonObject | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources = [entry for rt in sorted(types, key=lambda t: t.resource) for entry in _resource_entries(rt)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
