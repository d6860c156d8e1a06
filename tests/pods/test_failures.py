"""Failure messages from recorded pod statuses."""

from __future__ import annotations

import pytest

from fleet.pods.failures import pod_failure, start_failure, with_context
from fleet.pods.status import workload_done


def pod(phase="Running", containers=(), init=(), conditions=(), reason=None, message=None):
    status = {
        "phase": phase,
        "containerStatuses": [{"name": n, "state": s} for n, s in containers],
        "initContainerStatuses": [{"name": n, "state": s} for n, s in init],
        "conditions": list(conditions),
    }
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return {
        "spec": {
            "containers": [{"name": n} for n, _ in containers],
            "initContainers": [{"name": n} for n, _ in init],
        },
        "status": status,
    }


def terminated(code, reason="", message=""):
    return {"terminated": {"exitCode": code, "reason": reason, "message": message}}


START_CASES = [
    (pod("Pending", [("main", {"waiting": {"reason": "ContainerCreating"}})]), None),
    (
        pod("Pending", [("main", {"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}})]),
        "container main cannot start: ErrImagePull: pull access denied",
    ),
    (
        pod("Pending", [("main", {"waiting": {"reason": "ImagePullBackOff"}})]),
        "container main cannot start: ImagePullBackOff",
    ),
    (
        pod(
            "Pending", init=[("fleet-init", {"waiting": {"reason": "CreateContainerConfigError", "message": "no key"}})]
        ),
        "container fleet-init cannot start: CreateContainerConfigError: no key",
    ),
    (
        pod(
            "Pending",
            conditions=[
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes: gpu"}
            ],
        ),
        "the pod is Unschedulable: 0/1 nodes: gpu",
    ),
]


@pytest.mark.parametrize(("status", "expected"), START_CASES)
def test_start_failure(status, expected):
    assert start_failure(status) == expected


FAIL_CASES = [
    (pod("Succeeded", [("main", terminated(0, "Completed"))]), None),
    (pod("Failed", [("main", terminated(3, "Error"))]), "container main exited with 3 (Error)"),
    (pod("Failed", [("main", terminated(137, "OOMKilled"))]), "container main was OOMKilled (exit code 137)"),
    (pod("Failed", [("main", terminated(137))]), "container main was killed (137), likely out of memory"),
    (pod("Failed", [("main", terminated(137, "Error"))]), "container main was killed (137), likely out of memory"),
    (
        pod("Failed", [("main", terminated(137, "Error"))], reason="DeadlineExceeded", message="too long"),
        "the pod ran past its activeDeadlineSeconds (DeadlineExceeded); "
        "container main was killed (137), likely out of memory",
    ),
    (pod("Failed", reason="Evicted", message="low memory"), "the pod failed: Evicted: low memory"),
    (
        pod("Running", [("main", terminated(1, "Error")), ("fleet-sidecar", {"running": {}})]),
        "container main exited with 1 (Error)",
    ),
]


@pytest.mark.parametrize(("status", "expected"), FAIL_CASES)
def test_pod_failure(status, expected):
    assert pod_failure(status) == expected


def test_workload_done_ignores_the_sidecar():
    status = pod("Running", [("main", terminated(0)), ("fleet-sidecar", {"running": {}})])
    assert workload_done(status, ignore=frozenset({"fleet-sidecar"}))
    assert not workload_done(status)


def test_context_adds_warning_events_and_last_lines():
    text = with_context(
        "container main exited with 1",
        events=[{"type": "Normal", "reason": "Pulled"}, {"type": "Warning", "reason": "BackOff", "message": "x"}],
        last_lines={"main": [f"line {i}" for i in range(30)]},
        containers=["main"],
    )
    assert "Warning events:\n  BackOff: x" in text
    assert "line 29" in text
    assert "line 9\n" not in text
