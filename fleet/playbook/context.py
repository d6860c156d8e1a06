"""The step contract: what every step gets (``StepContext``), what it gives back (``StepResult``), and what
it records before it writes (``Snapshot``, for ``rollback: auto``).

A step never prints and never writes the journal: it ``emit``s typed events (``fleet.playbook.events``);
the engine's journal writer and view consume them. ``StepFailed`` (``fleet.errors``) carries the step, the
cluster and the partial result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.artifacts import ArtifactStore
from fleet.errors import InputError
from fleet.kube import KubeClient
from fleet.kube.objects import JsonObject, ObjectRef
from fleet.playbook.events import Event
from fleet.pods import Detach
from fleet.secrets import SecretResolver

JsonMap = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """An object as it was before a step wrote it: ``before`` is None when the step created it."""

    ref: ObjectRef
    before: JsonObject | None

    def as_json(self) -> JsonMap:
        return {"ref": _ref_json(self.ref), "before": self.before}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        ref = data["ref"]
        return cls(ObjectRef(ref["apiVersion"], ref["kind"], ref["name"], ref.get("namespace")), data.get("before"))


async def _no_event(event: Event) -> None:
    return None


async def _no_snapshot(snapshot: Snapshot) -> None:
    return None


@dataclass(frozen=True)
class StepContext:
    """Where and as what a step runs. Frozen: a step changes nothing here, it returns a ``StepResult``."""

    run_id: str
    cluster: str
    step_id: str
    #: The cluster's client; None for a run-level step (``before``, ``onFailure``, ``finally``).
    cluster_client: KubeClient | None
    artifacts: ArtifactStore
    attempt: int = 1
    base_dir: Path | None = None
    #: The template variables (``inputs``, ``cluster``, ``outputs``, ``run``, ``secret()``…): ``template:``
    #: files are rendered with them when the step runs.
    variables: Mapping[str, Any] = field(default_factory=dict)
    #: Called with each event; awaited, so a journal can commit before the step goes on.
    emit: Callable[[Event], Awaitable[None]] = _no_event
    #: Called with an object's state before the step writes it (``rollback: auto``); awaited before the
    #: write, so the snapshot is durable before the side effect. None: no snapshots are taken.
    snapshot: Callable[[Snapshot], Awaitable[None]] | None = None
    detach: Detach = field(default_factory=Detach)
    #: The run was started by this process (not resumed): a pod step skips its reattach lookup.
    new_run: bool = False
    #: Plan mode: applies and patches are server-side dry runs, nothing is written.
    dry_run: bool = False
    #: The run's secret stores: the ``vault.*`` steps use its Vault connection (the inventory's).
    resolver: SecretResolver | None = None

    @property
    def client(self) -> KubeClient:
        if self.cluster_client is None:  # the loader keeps cluster steps out of run-level lists
            raise InputError(f"step {self.step_id} runs once per run, with no cluster to talk to")
        return self.cluster_client


@dataclass
class StepResult:
    """What a step gave: its outputs (``outputs.<step id>`` for later steps) and what it touched."""

    outputs: JsonMap = field(default_factory=dict)
    touched: list[Snapshot] = field(default_factory=list)


def _ref_json(ref: ObjectRef) -> JsonMap:
    return {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name, "namespace": ref.namespace}
