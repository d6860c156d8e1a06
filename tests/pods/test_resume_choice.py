"""Which pod a resumed pod step reattaches to, and which others of the step it deletes (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.pods.resume import choose


def _pod(name: str, phase: str, created: str, *, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created, "resourceVersion": "1"}
    if terminating:
        meta["deletionTimestamp"] = created
    return {"metadata": meta, "status": {"phase": phase}}


PODS = [
    _pod("failed-1", "Failed", "2026-01-01T00:00:01Z"),
    _pod("running-2", "Running", "2026-01-01T00:00:02Z"),
    _pod("pending-3", "Pending", "2026-01-01T00:00:03Z"),
    _pod("going-4", "Running", "2026-01-01T00:00:04Z", terminating=True),
]


@pytest.mark.parametrize(
    ("pods", "finished_too", "chosen", "others"),
    [
        (PODS, False, "pending-3", ["running-2"]),
        # A step that deletes its pods also deletes an earlier try's finished pod a crash left behind.
        (PODS, True, "pending-3", ["failed-1", "running-2"]),
        # Nothing to reattach to: a new pod is created; the finished one goes only if the step deletes pods.
        ([PODS[0]], False, None, []),
        ([PODS[0]], True, None, ["failed-1"]),
        ([PODS[3]], True, None, []),
    ],
)
def test_choose(pods, finished_too, chosen, others):
    choice = choose(pods, finished_too=finished_too)
    assert (choice.pod["metadata"]["name"] if choice.pod else None) == chosen
    assert [p["metadata"]["name"] for p in choice.others] == others
