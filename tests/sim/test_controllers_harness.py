"""Shared helpers for the controller tests: a cluster with controllers (and the kubelet) on a trio nursery."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from fleet.sim.cluster import ClusterState, SimConfig
from fleet.sim.controllers import run_controllers
from fleet.sim.kubelet import run_kubelet
from fleet.sim.model import JsonObject
from tests.sim.kubelet_harness import wait_for


@asynccontextmanager
async def controlled_cluster(*, kubelet: bool = True, **config: Any) -> AsyncIterator[ClusterState]:
    config.setdefault("ready_delay", 0.05)
    state = ClusterState(name="ctl", config=SimConfig(**config))
    async with trio.open_nursery() as nursery:
        await nursery.start(run_controllers, state)
        if kubelet:
            nursery.start_soon(run_kubelet, state)
            nodes = state.config.nodes + state.config.gpu_nodes
            await wait_for(state, lambda s: len(s.store.list_objects(s.rt("", "Node"))) == nodes)
        yield state
        nursery.cancel_scope.cancel()


def rt(state: ClusterState, kind: str) -> Any:
    group = {"Deployment": "apps", "ReplicaSet": "apps", "StatefulSet": "apps", "DaemonSet": "apps"}.get(kind, "")
    group = {"Job": "batch", "CronJob": "batch", "ControllerRevision": "apps"}.get(kind, group)
    group = "apiextensions.k8s.io" if kind == "CustomResourceDefinition" else group
    return state.rt(group, kind)


def create(state: ClusterState, obj: JsonObject) -> JsonObject:
    return state.store.create(rt(state, obj["kind"]), copy.deepcopy(obj))


def get(state: ClusterState, kind: str, name: str, namespace: str = "default") -> JsonObject | None:
    return state.store.get(rt(state, kind), namespace if rt(state, kind).namespaced else "", name)


def listed(state: ClusterState, kind: str, namespace: str | None = "default") -> list[JsonObject]:
    return state.store.list_objects(rt(state, kind), namespace)


def change(
    state: ClusterState, kind: str, name: str, edit: Callable[[JsonObject], None], namespace: str = "default"
) -> JsonObject:
    """A client-style update: read, edit a copy, write back with its resourceVersion."""
    obj = copy.deepcopy(get(state, kind, name, namespace))
    assert obj is not None
    edit(obj)
    return state.store.update(rt(state, kind), obj)


def owned_by(state: ClusterState, kind: str, owner: JsonObject, namespace: str = "default") -> list[JsonObject]:
    uid = owner["metadata"]["uid"]
    return [
        o
        for o in listed(state, kind, namespace)
        if any(r["uid"] == uid for r in o["metadata"].get("ownerReferences", []))
    ]


def condition(obj: JsonObject | None, type_: str) -> JsonObject:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def deployment(name: str = "web", replicas: int = 3, image: str = "nginx:1.27", **spec: Any) -> JsonObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
            **spec,
        },
    }


def deleted(state: ClusterState, obj: JsonObject, policy: str = "Background") -> None:
    """What the HTTP front does for DELETE with a propagationPolicy."""
    from fleet.sim.controllers.ownership import delete_object

    r = rt(state, obj["kind"])
    current = state.store.get(r, obj["metadata"].get("namespace", "") if r.namespaced else "", obj["metadata"]["name"])
    assert current is not None
    delete_object(state, r, current, policy)
