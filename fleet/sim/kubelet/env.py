"""A container's environment: ``env`` (value, fieldRef, resourceFieldRef, secretKeyRef, configMapKeyRef)
and ``envFrom``, resolved against the pod and the cluster's store as the kubelet does."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from typing import Any

from fleet.sim.cluster import ClusterState
from fleet.sim.errors import SimError
from fleet.sim.kubelet.nodes import NODE_CAPACITY
from fleet.sim.kubelet.quantity import parse_quantity
from fleet.sim.model import JsonObject

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_FIELD_INDEX = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")
_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class EnvError(SimError):
    """A reference the environment needs is missing (the kubelet's CreateContainerConfigError)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known names are replaced, ``$$`` escapes, unknown stay as is."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(sub, text)


def field_value(pod: JsonObject, path: str) -> str:
    """The value of a downward-API ``fieldPath`` for ``pod``."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    indexed = _FIELD_INDEX.match(path)
    if indexed:
        return str((meta.get(indexed.group(1)) or {}).get(indexed.group(2), ""))
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(p["ip"] for p in status.get("podIPs") or []),
        "status.hostIPs": ",".join(p["ip"] for p in status.get("hostIPs") or []),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    if path not in simple:
        raise EnvError(f"unsupported fieldPath {path!r}")
    return str(simple[path] or "")


def resource_value(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    """A ``resourceFieldRef`` value: the container's limit (else the node's capacity) over the divisor."""
    kind, _, res = str(ref.get("resource", "")).partition(".")
    resources = container.get("resources") or {}
    source = resources.get(kind) or {}
    if kind == "requests" and res not in source:
        source = resources.get("limits") or {}
    raw = source.get(res, NODE_CAPACITY.get(res, "0") if kind == "limits" or res in ("cpu", "memory") else "0")
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(parse_quantity(raw) / divisor))


def _lookup(state: ClusterState, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
    obj = state.store.get(state.rt("", kind), namespace, name)
    if obj is None:
        if optional:
            return None
        raise EnvError(f'{kind.lower()} "{name}" not found')
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
        data.update(obj.get("stringData") or {})
        return data
    return {**(obj.get("data") or {})}


def container_env(state: ClusterState, pod: JsonObject, container: Mapping[str, Any]) -> dict[str, str]:
    """The environment of ``container``: image-like defaults, then envFrom, then env in order."""
    meta = pod.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": meta.get("name", ""), "HOME": "/root"}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref:
                data = _lookup(state, kind, namespace, ref.get("name", ""), bool(ref.get("optional")))
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var or not var.get("valueFrom"):
            env[name] = expand(str(var.get("value", "")), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"].get("fieldPath", ""))
        elif "resourceFieldRef" in source:
            env[name] = resource_value(container, source["resourceFieldRef"])
        else:
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = source.get(key)
                if not ref:
                    continue
                optional = bool(ref.get("optional"))
                data = _lookup(state, kind, namespace, ref.get("name", ""), optional)
                if data is None:
                    break
                if ref.get("key") not in data:
                    if optional:
                        break
                    raise EnvError(f"couldn't find key {ref.get('key')} in {kind} {namespace}/{ref.get('name')}")
                env[name] = data[ref["key"]]
    return env
