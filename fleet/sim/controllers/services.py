"""Cheap realism for readiness checks: LoadBalancer Services get an ingress IP, PVCs get bound to a new PV."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.naming import fnv32a
from fleet.sim.model import WatchEvent


class ServiceController(Controller):
    """Services get a cluster IP (10.96.0.0/12) if the front did not allocate one, and a Service of type
    LoadBalancer gets ``status.loadBalancer.ingress`` with an IP in 127.0.0.0/8."""

    name = "service"
    watches = frozenset({"services"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.svc_rt = self.state.rt("", "Service")

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        if event.type != "DELETED":
            yield (event.object["metadata"].get("namespace", ""), event.object["metadata"]["name"])

    def reconcile(self, key: Key) -> float | None:
        svc = self.state.store.get(self.svc_rt, *key)
        if svc is None or svc["metadata"].get("deletionTimestamp"):
            return None
        spec = svc.get("spec") or {}
        kind = spec.get("type", "ClusterIP")
        h = fnv32a(svc["metadata"]["uid"].encode())
        updated = copy.deepcopy(svc)
        if kind != "ExternalName" and not spec.get("clusterIP"):
            ip = f"10.{96 + ((h >> 16) & 0x0F)}.{(h >> 8) & 0xFF}.{max(h & 0xFF, 1)}"
            updated.setdefault("spec", {})["clusterIP"] = ip
            updated["spec"]["clusterIPs"] = [ip]
        if kind == "LoadBalancer" and not ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            ip = f"127.{(h >> 16) & 0xFF}.{(h >> 8) & 0xFF}.{max(h & 0xFF, 1)}"
            updated.setdefault("status", {})["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}
        if updated != svc:
            self.state.store.update(self.svc_rt, updated, check_version=False)
        return None


class VolumeBinder(Controller):
    """A PersistentVolumeClaim gets a PersistentVolume of its size and becomes Bound; a PV whose claim is
    gone and whose reclaim policy is Delete goes too."""

    name = "volume-binder"
    watches = frozenset({"persistentvolumeclaims"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.pvc_rt = self.state.rt("", "PersistentVolumeClaim")
        self.pv_rt = self.state.rt("", "PersistentVolume")

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        meta = event.object["metadata"]
        if event.type == "DELETED":
            pv_name = (event.object.get("spec") or {}).get("volumeName")
            if pv_name:
                yield ("", pv_name)
        elif (event.object.get("status") or {}).get("phase") != "Bound":
            yield (meta.get("namespace", ""), meta["name"])

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        if not namespace:
            self._release(name)
            return None
        pvc = self.state.store.get(self.pvc_rt, namespace, name)
        if pvc is None or pvc["metadata"].get("deletionTimestamp") or (pvc.get("status") or {}).get("phase") == "Bound":
            return None
        spec = pvc.get("spec") or {}
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        modes = spec.get("accessModes") or ["ReadWriteOnce"]
        pv_name = spec.get("volumeName") or f"pvc-{pvc['metadata']['uid']}"
        if self.state.store.get(self.pv_rt, "", pv_name) is None:
            pv = {
                "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "fleet-sim"}},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": modes,
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": spec.get("storageClassName", "standard"),
                    "volumeMode": spec.get("volumeMode", "Filesystem"),
                    "hostPath": {"path": f"/tmp/fleet-sim/{pv_name}"},
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": namespace,
                        "name": name,
                        "uid": pvc["metadata"]["uid"],
                    },
                },
                "status": {"phase": "Bound"},
            }
            self.state.store.create(self.pv_rt, pv)
        updated = copy.deepcopy(pvc)
        updated.setdefault("spec", {})["volumeName"] = pv_name
        updated["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bind-completed"] = "yes"
        updated["status"] = {"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}}
        self.state.store.update(self.pvc_rt, updated, check_version=False)
        return None

    def _release(self, pv_name: str) -> None:
        """The claim is gone: a PV with reclaim policy Delete goes too."""
        pv = self.state.store.get(self.pv_rt, "", pv_name)
        if pv is None or (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy", "Delete") != "Delete":
            return
        claim = (pv.get("spec") or {}).get("claimRef") or {}
        pvc = self.state.store.get(self.pvc_rt, claim.get("namespace", ""), claim.get("name", ""))
        if pvc is None or pvc["metadata"]["uid"] != claim.get("uid"):
            self.state.store.remove(self.pv_rt, "", pv_name)
