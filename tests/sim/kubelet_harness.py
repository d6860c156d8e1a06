"""Drive a cluster's kubelet directly on a ClusterState (no HTTP), and wait on the store's feed."""

from __future__ import annotations

import copy
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from fleet.sim.cluster import ClusterState, SimConfig
from fleet.sim.kubelet import run_kubelet
from fleet.sim.model import JsonObject


@asynccontextmanager
async def running_cluster(**config: Any) -> AsyncIterator[ClusterState]:
    state = ClusterState(name="k", config=SimConfig(**config))
    # Other fixtures (OpenBao, moto) may own children of this process for the whole session.
    before = child_processes()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_kubelet, state)
        nodes = state.config.nodes + state.config.gpu_nodes
        await wait_for(state, lambda s: len(s.store.list_objects(s.rt("", "Node"))) == nodes)
        yield state
        await delete_all_pods(state)
        nursery.cancel_scope.cancel()
    assert new_children(before) == [], "the kubelet left processes running"


def new_children(before: dict[int, str]) -> list[str]:
    """Command lines of the live children that were not in ``before``."""
    return [cmd for pid, cmd in child_processes().items() if pid not in before]


def child_processes() -> dict[int, str]:
    """This process's live children (containers, holders, execs; also session services), by pid."""
    me = str(os.getpid())
    out: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[1] == me and fields[0] != "Z":
            out[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return out


async def wait_for(state: ClusterState, check: Callable[[ClusterState], Any], timeout: float = 20) -> Any:
    """Wait (on the change feed) until ``check(state)`` is truthy; return its value."""
    with trio.fail_after(timeout):
        while True:
            seen = state.store.resource_version
            value = check(state)
            if value:
                return value
            await state.store.wait_changed(seen)


def pod(name: str, *containers: JsonObject, **spec: Any) -> JsonObject:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"containers": list(containers), **spec}}


def create_pod(state: ClusterState, obj: JsonObject) -> JsonObject:
    return state.store.create(state.rt("", "Pod"), copy.deepcopy(obj))


def get_pod(state: ClusterState, name: str) -> JsonObject | None:
    return state.store.get(state.rt("", "Pod"), "default", name)


async def wait_pod(
    state: ClusterState, name: str, check: Callable[[JsonObject], Any], timeout: float = 15
) -> JsonObject:
    def probe(s: ClusterState) -> JsonObject | None:
        p = get_pod(s, name)
        return p if p is not None and check(p) else None

    result: JsonObject = await wait_for(state, probe, timeout)
    return result


def phase(p: JsonObject) -> str:
    return (p.get("status") or {}).get("phase", "")


def container_status(p: JsonObject, name: str) -> JsonObject:
    status = p.get("status") or {}
    for s in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        if s["name"] == name:
            return dict(s)
    raise KeyError(name)


def waiting_reason(p: JsonObject, name: str) -> str:
    try:
        return str(container_status(p, name)["state"].get("waiting", {}).get("reason", ""))
    except KeyError:
        return ""


def delete_pod(state: ClusterState, name: str, grace: int = 0) -> None:
    state.store.mark_deleting(state.rt("", "Pod"), "default", name, grace)


async def delete_all_pods(state: ClusterState) -> None:
    pods = state.rt("", "Pod")
    for p in list(state.store.list_objects(pods)):
        if not p["metadata"].get("deletionTimestamp"):
            state.store.mark_deleting(pods, p["metadata"]["namespace"], p["metadata"]["name"], 0)
    await wait_for(state, lambda s: not s.store.list_objects(pods))


def events(state: ClusterState, name: str) -> list[tuple[str, str]]:
    return [
        (e["reason"], e["message"])
        for e in state.store.list_objects(state.rt("", "Event"))
        if e["involvedObject"]["name"] == name
    ]


async def read_log(state: ClusterState, name: str, container: str, previous: bool = False, **query: Any) -> str:
    """A container's log through the kubelet (what the log endpoint serves)."""
    from fleet.sim.kubelet import kubelet_for
    from fleet.sim.kubelet.logs import LogQuery

    kubelet = kubelet_for(state)
    assert kubelet is not None
    worker = kubelet.worker("default", name)
    assert worker is not None
    logs = worker.logs[container]
    log = logs.previous if previous else logs.current
    assert log is not None
    return b"".join([chunk async for chunk in log.read(LogQuery(**query))]).decode()
