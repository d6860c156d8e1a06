"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks for (``Accept: ...;as=Table``).

kubectl prints whatever columns the server sends, so the columns here are the API server's own for the
common kinds (``kubectl get pods`` shows READY, STATUS, RESTARTS, AGE; ``-o wide`` adds the priority-1
columns), a CRD's ``additionalPrinterColumns`` for custom resources, and NAME, AGE for everything else.
Ages are rendered as the API server renders them (``duration.HumanDuration``: ``45s``, ``5m30s``, ``3h``).
"""

from __future__ import annotations

import time
from calendar import timegm
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as parse_jsonpath

from fleet.sim.model import JsonObject, ResourceType

Cell = str | int | float | bool | None
Getter = Callable[[JsonObject], Cell]


@dataclass(frozen=True)
class Column:
    name: str
    get: Getter
    type: str = "string"
    priority: int = 0  # 1: shown by `-o wide` only
    format: str = ""


def human_duration(seconds: float) -> str:
    """A duration as kubectl shows ages (k8s.io/apimachinery/pkg/util/duration.HumanDuration)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _since(timestamp: Any) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        then = timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return "<unknown>"
    return human_duration(time.time() - then)


def _at(obj: JsonObject, *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _age(obj: JsonObject) -> Cell:
    return _since(_at(obj, "metadata", "creationTimestamp"))


def _num(*path: str) -> Getter:
    return lambda obj: int(_at(obj, *path) or 0)


def _ratio(have: tuple[str, ...], want: tuple[str, ...], want_default: int = 1) -> Getter:
    def get(obj: JsonObject) -> Cell:
        wanted = _at(obj, *want)
        return f"{int(_at(obj, *have) or 0)}/{want_default if wanted is None else int(wanted)}"

    return get


def _containers(obj: JsonObject) -> list[JsonObject]:
    return list(_at(obj, "spec", "template", "spec", "containers") or [])


def _container_names(obj: JsonObject) -> Cell:
    return ",".join(str(c.get("name", "")) for c in _containers(obj))


def _images(obj: JsonObject) -> Cell:
    return ",".join(str(c.get("image", "")) for c in _containers(obj))


def _selector(obj: JsonObject) -> Cell:
    labels = _at(obj, "spec", "selector", "matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "<none>"


# -- pods ------------------------------------------------------------------------------------------


def _pod_ready(pod: JsonObject) -> Cell:
    statuses = _at(pod, "status", "containerStatuses") or []
    total = len(_at(pod, "spec", "containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(pod: JsonObject) -> Cell:
    """The STATUS column: the phase, or what holds the pod up (as kubectl's pod printer decides)."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for init in status.get("initContainerStatuses") or []:
        state = init.get("state") or {}
        if (state.get("terminated") or {}).get("exitCode", 0) == 0 and "terminated" in state:
            continue
        waiting = (state.get("waiting") or {}).get("reason")
        reason = f"Init:{waiting}" if waiting and waiting != "PodInitializing" else "Init:0/1"
        break
    else:
        for container in reversed(status.get("containerStatuses") or []):
            state = container.get("state") or {}
            waiting = (state.get("waiting") or {}).get("reason")
            terminated = state.get("terminated") or {}
            if waiting:
                reason = waiting
            elif terminated.get("reason"):
                reason = terminated["reason"]
    if _at(pod, "metadata", "deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _restarts(pod: JsonObject) -> Cell:
    return str(sum(int(s.get("restartCount") or 0) for s in _at(pod, "status", "containerStatuses") or []))


# -- other kinds -----------------------------------------------------------------------------------


def _job_status(job: JsonObject) -> Cell:
    """The Job printer's STATUS, in its order of precedence."""
    conditions = {c.get("type"): c.get("status") for c in _at(job, "status", "conditions") or []}
    for kind in ("Complete", "Failed"):
        if conditions.get(kind) == "True":
            return kind
    if _at(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    for kind in ("FailureTarget", "SuccessCriteriaMet", "Suspended"):
        if conditions.get(kind) == "True":
            return kind
    return "Running"


def _job_duration(job: JsonObject) -> Cell:
    start, end = _at(job, "status", "startTime"), _at(job, "status", "completionTime")
    if not start:
        return ""
    if not end:
        return _since(start)
    try:
        begin = timegm(time.strptime(start[:19], "%Y-%m-%dT%H:%M:%S"))
        finish = timegm(time.strptime(end[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return ""
    return human_duration(finish - begin)


def _node_status(node: JsonObject) -> Cell:
    conditions = {c.get("type"): c.get("status") for c in _at(node, "status", "conditions") or []}
    status = "Ready" if conditions.get("Ready") == "True" else "NotReady"
    return status + (",SchedulingDisabled" if _at(node, "spec", "unschedulable") else "")


def _node_roles(node: JsonObject) -> Cell:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix) :] for k in _at(node, "metadata", "labels") or {} if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _service_ports(svc: JsonObject) -> Cell:
    ports = []
    for port in _at(svc, "spec", "ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _external_ip(svc: JsonObject) -> Cell:
    ingress = _at(svc, "status", "loadBalancer", "ingress") or []
    addresses = [i.get("ip") or i.get("hostname") for i in ingress]
    addresses += _at(svc, "spec", "externalIPs") or []
    if addresses:
        return ",".join(str(a) for a in addresses)
    return "<pending>" if _at(svc, "spec", "type") == "LoadBalancer" else "<none>"


def _count(*path: str) -> Getter:
    return lambda obj: len(_at(obj, *path) or {})


def _data_count(obj: JsonObject) -> Cell:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {}) + len(obj.get("stringData") or {})


def _event_object(event: JsonObject) -> Cell:
    involved = event.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def _event_last_seen(event: JsonObject) -> Cell:
    return _since(event.get("lastTimestamp") or event.get("eventTime") or _at(event, "metadata", "creationTimestamp"))


AGE = Column("Age", _age)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "pods": (
        Column("Ready", _pod_ready),
        Column("Status", _pod_status),
        Column("Restarts", _restarts),
        AGE,
        Column("IP", lambda p: _at(p, "status", "podIP") or "<none>", priority=1),
        Column("Node", lambda p: _at(p, "spec", "nodeName") or "<none>", priority=1),
        Column("Nominated Node", lambda p: "<none>", priority=1),
        Column("Readiness Gates", lambda p: "<none>", priority=1),
    ),
    "deployments.apps": (
        Column("Ready", _ratio(("status", "readyReplicas"), ("spec", "replicas"))),
        Column("Up-to-date", _num("status", "updatedReplicas"), type="integer"),
        Column("Available", _num("status", "availableReplicas"), type="integer"),
        AGE,
        Column("Containers", _container_names, priority=1),
        Column("Images", _images, priority=1),
        Column("Selector", _selector, priority=1),
    ),
    "replicasets.apps": (
        Column("Desired", _num("spec", "replicas"), type="integer"),
        Column("Current", _num("status", "replicas"), type="integer"),
        Column("Ready", _num("status", "readyReplicas"), type="integer"),
        AGE,
        Column("Containers", _container_names, priority=1),
        Column("Images", _images, priority=1),
        Column("Selector", _selector, priority=1),
    ),
    "statefulsets.apps": (
        Column("Ready", _ratio(("status", "readyReplicas"), ("spec", "replicas"))),
        AGE,
        Column("Containers", _container_names, priority=1),
        Column("Images", _images, priority=1),
    ),
    "daemonsets.apps": (
        Column("Desired", _num("status", "desiredNumberScheduled"), type="integer"),
        Column("Current", _num("status", "currentNumberScheduled"), type="integer"),
        Column("Ready", _num("status", "numberReady"), type="integer"),
        Column("Up-to-date", _num("status", "updatedNumberScheduled"), type="integer"),
        Column("Available", _num("status", "numberAvailable"), type="integer"),
        Column(
            "Node Selector",
            lambda d: (
                ",".join(f"{k}={v}" for k, v in (_at(d, "spec", "template", "spec", "nodeSelector") or {}).items())
                or "<none>"
            ),
        ),
        AGE,
    ),
    "jobs.batch": (
        Column("Status", _job_status),
        Column("Completions", _ratio(("status", "succeeded"), ("spec", "completions"))),
        Column("Duration", _job_duration),
        AGE,
    ),
    "cronjobs.batch": (
        Column("Schedule", lambda c: _at(c, "spec", "schedule") or ""),
        Column("Timezone", lambda c: _at(c, "spec", "timeZone") or "<none>"),
        Column("Suspend", lambda c: "True" if _at(c, "spec", "suspend") else "False"),
        Column("Active", _count("status", "active"), type="integer"),
        Column(
            "Last Schedule",
            lambda c: (
                _since(_at(c, "status", "lastScheduleTime")) if _at(c, "status", "lastScheduleTime") else "<none>"
            ),
        ),
        AGE,
    ),
    "namespaces": (Column("Status", lambda n: _at(n, "status", "phase") or "Active"), AGE),
    "nodes": (
        Column("Status", _node_status),
        Column("Roles", _node_roles),
        AGE,
        Column("Version", lambda n: _at(n, "status", "nodeInfo", "kubeletVersion") or ""),
    ),
    "services": (
        Column("Type", lambda s: _at(s, "spec", "type") or "ClusterIP"),
        Column("Cluster-IP", lambda s: _at(s, "spec", "clusterIP") or "<none>"),
        Column("External-IP", _external_ip),
        Column("Port(s)", _service_ports),
        AGE,
    ),
    "configmaps": (Column("Data", _data_count, type="integer"), AGE),
    "secrets": (Column("Type", lambda s: s.get("type") or "Opaque"), Column("Data", _data_count, type="integer"), AGE),
    "events": (
        Column("Last Seen", _event_last_seen),
        Column("Type", lambda e: e.get("type") or ""),
        Column("Reason", lambda e: e.get("reason") or ""),
        Column("Object", _event_object),
        Column("Message", lambda e: e.get("message") or ""),
    ),
}


def crd_columns(definitions: Sequence[JsonObject]) -> tuple[Column, ...]:
    """Columns from a CRD version's ``additionalPrinterColumns`` (JSONPath), then AGE as the API server adds it."""
    columns: list[Column] = []
    for definition in definitions:
        path = str(definition.get("jsonPath", ""))
        try:
            expression = parse_jsonpath("$" + path if path.startswith(".") else path)
        except (
            JsonPathLexerError,
            JsonPathParserError,
            ValueError,
            TypeError,
            AttributeError,
        ):  # a bad path prints an empty cell
            expression = None

        def get(obj: JsonObject, expression: Any = expression, kind: str = str(definition.get("type", ""))) -> Cell:
            if expression is None:
                return None
            found = [m.value for m in expression.find(obj)]
            if not found:
                return None
            value = found[0]
            return _since(value) if kind == "date" else value

        columns.append(
            Column(
                str(definition.get("name", "")),
                get,
                type="string" if definition.get("type") == "date" else str(definition.get("type", "string")),
                priority=int(definition.get("priority", 0) or 0),
                format=str(definition.get("format", "")),
            )
        )
    return (*columns, AGE)


def table(
    rt: ResourceType,
    items: list[JsonObject],
    resource_version: int,
    custom_columns: tuple[Column, ...] | None = None,
    *,
    definitions: bool = True,
) -> JsonObject:
    """A Table of ``items``; with ``definitions=False`` the columns are left out (later watch events)."""
    columns = custom_columns if custom_columns is not None else COLUMNS.get(rt.key, (AGE,))
    rows: list[dict[str, Any]] = []
    for obj in items:
        meta = obj.get("metadata", {})
        rows.append(
            {
                "cells": [meta.get("name", ""), *(column.get(obj) for column in columns)],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
            }
        )
    name = Column("Name", lambda o: None, format="name")
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(resource_version)},
        "columnDefinitions": [
            {"name": c.name, "type": c.type, "format": c.format, "description": c.name, "priority": c.priority}
            for c in (name, *columns)
        ]
        if definitions
        else None,
        "rows": rows,
    }
