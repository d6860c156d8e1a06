"""Failure messages users can act on: the container, exit code, reason, message, the pod's Warning events
and the last log lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleet.kube.objects import JsonObject, get_path
from fleet.pods.status import ContainerState, container_states, fatal_waiting, phase, unschedulable

OOM_EXIT_CODE = 137
LAST_LINES = 20


def describe_exit(container: ContainerState) -> str:
    """``container main exited with 3 (Error)``; exit 137 without a reason is a likely OOM kill."""
    code = container.exit_code
    if code == OOM_EXIT_CODE and container.reason in {"", "Error"}:
        text = f"container {container.name} was killed (137), likely out of memory"
    elif container.reason == "OOMKilled":
        text = f"container {container.name} was OOMKilled (exit code {code})"
    else:
        text = f"container {container.name} exited with {code}"
        if container.reason:
            text += f" ({container.reason})"
    if container.message:
        text += f": {container.message}"
    return text


def failed_containers(pod: JsonObject, *, ignore: frozenset[str] = frozenset()) -> list[ContainerState]:
    return [
        c
        for c in container_states(pod)
        if c.state == "terminated" and c.exit_code not in (0, None) and c.name not in ignore
    ]


def start_failure(pod: JsonObject) -> str | None:
    """Why the pod cannot start, as soon as that is known (image pull, config, scheduling)."""
    waiting = fatal_waiting(pod)
    if waiting is not None:
        text = f"container {waiting.name} cannot start: {waiting.reason}"
        return f"{text}: {waiting.message}" if waiting.message else text
    message = unschedulable(pod)
    if message is not None:
        return f"the pod is Unschedulable: {message}"
    return None


def pod_failure(pod: JsonObject, *, ignore: frozenset[str] = frozenset()) -> str | None:
    """Why a finished (or workload-finished) pod failed, or None when it did not."""
    parts = [describe_exit(c) for c in failed_containers(pod, ignore=ignore)]
    reason = str(get_path(pod, "status", "reason", default=""))
    if phase(pod) == "Failed" or reason:
        if reason == "DeadlineExceeded":
            parts.insert(0, "the pod ran past its activeDeadlineSeconds (DeadlineExceeded)")
        elif reason:
            message = str(get_path(pod, "status", "message", default=""))
            parts.insert(0, f"the pod failed: {reason}" + (f": {message}" if message else ""))
        elif not parts:
            parts.append("the pod failed")
    return "; ".join(parts) if parts else None


def with_context(
    message: str,
    *,
    events: Sequence[JsonObject] = (),
    last_lines: Mapping[str, Sequence[str]] | None = None,
    containers: Sequence[str] = (),
) -> str:
    """``message`` plus the pod's Warning events and the last log lines of the named containers."""
    lines = [message]
    warnings = [e for e in events if e.get("type") == "Warning"]
    if warnings:
        lines.append("Warning events:")
        lines.extend(f"  {e.get('reason', '')}: {e.get('message', '')}" for e in warnings[-10:])
    for name in containers:
        tail = list((last_lines or {}).get(name, ()))[-LAST_LINES:]
        if tail:
            lines.append(f"last log lines of {name}:")
            lines.extend(f"  {line}" for line in tail)
    return "\n".join(lines)
