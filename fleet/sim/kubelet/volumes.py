"""Pod volumes as host directories that the runtime bind-mounts into each container.

- ``emptyDir`` (also ``medium: Memory``): a directory of the pod's sandbox, shared by its containers.
- ``configMap``, ``secret``, ``downwardAPI``, ``projected``: files written from the objects at start.
- ``hostPath``: mapped into a per-node directory of the sim, never the real host path.
- ``persistentVolumeClaim``: a per-claim directory of the sim that outlives the pod.
Any other volume type is refused with a message naming it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleet.sim.cluster import ClusterState
from fleet.sim.errors import SimError
from fleet.sim.kubelet.env import field_value
from fleet.sim.model import JsonObject


class VolumeError(SimError):
    """A volume cannot be set up (the kubelet's FailedMount)."""


def _safe_join(base: Path, relative: str) -> Path:
    target = (base / relative).resolve()
    if not target.is_relative_to(base.resolve()):
        raise VolumeError(f"path {relative!r} escapes the volume")
    return target


def _write(base: Path, relative: str, content: bytes, mode: int) -> None:
    target = _safe_join(base, relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    target.chmod(mode)


def _object_files(
    state: ClusterState, namespace: str, kind: str, source: Mapping[str, Any], name_key: str
) -> dict[str, bytes] | None:
    name = source.get(name_key, "")
    obj = state.store.get(state.rt("", kind), namespace, name)
    if obj is None:
        if source.get("optional"):
            return None
        raise VolumeError(f'{kind.lower()} "{name}" not found')
    if kind == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    items = source.get("items")
    if not items:
        return data
    out: dict[str, bytes] = {}
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise VolumeError(f"configmap/secret {name!r} has no key {item['key']!r}")
        out[item.get("path") or item["key"]] = data[item["key"]]
    return out


def _fill(
    state: ClusterState, pod: JsonObject, target: Path, source: Mapping[str, Any], kind: str, default_mode: int
) -> None:
    namespace = pod["metadata"].get("namespace") or "default"
    if kind in ("configMap", "secret"):
        files = _object_files(
            state,
            namespace,
            "ConfigMap" if kind == "configMap" else "Secret",
            source,
            "name" if kind == "configMap" else "secretName",
        )
        for rel, content in (files or {}).items():
            _write(target, rel, content, default_mode)
    elif kind == "downwardAPI":
        for item in source.get("items") or []:
            ref = item.get("fieldRef") or {}
            _write(target, item["path"], field_value(pod, ref.get("fieldPath", "")).encode(), default_mode)
    elif kind == "serviceAccountToken":
        # Not a token the sim's API accepts: pods in the sim do not call back into the API server.
        _write(target, source.get("path", "token"), secrets.token_urlsafe(32).encode(), default_mode)
    elif kind == "clusterTrustBundle":
        raise VolumeError("clusterTrustBundle projections are not supported by fleet.sim")


def prepare_volumes(state: ClusterState, pod: JsonObject, sandbox: Path, sim_root: Path) -> dict[str, Path]:
    """Create every volume of ``pod``; returns the host directory of each volume by name."""
    spec = pod.get("spec") or {}
    namespace = pod["metadata"].get("namespace") or "default"
    out: dict[str, Path] = {}
    for volume in spec.get("volumes") or []:
        name = volume["name"]
        if "hostPath" in volume:
            node = spec.get("nodeName", "node")
            path = sim_root / "nodes" / node / str(volume["hostPath"].get("path", "/")).lstrip("/")
            if volume["hostPath"].get("type") in ("File", "FileOrCreate"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:
                path.mkdir(parents=True, exist_ok=True)
            out[name] = path
            continue
        if "persistentVolumeClaim" in volume:
            path = sim_root / "claims" / namespace / volume["persistentVolumeClaim"].get("claimName", name)
            path.mkdir(parents=True, exist_ok=True)
            out[name] = path
            continue
        path = sandbox / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        out[name] = path
        if "emptyDir" in volume:
            continue
        kinds = [k for k in ("configMap", "secret", "downwardAPI", "projected") if k in volume]
        if not kinds:
            others = sorted(k for k in volume if k != "name")
            raise VolumeError(f"volume {name!r}: type {', '.join(others) or '?'} is not supported by fleet.sim")
        source = volume[kinds[0]]
        mode = int(source.get("defaultMode", 0o644))
        if kinds[0] == "projected":
            for part in source.get("sources") or []:
                for kind, sub in part.items():
                    _fill(state, pod, path, sub, kind, mode)
        else:
            _fill(state, pod, path, source, kinds[0], mode)
    return out
