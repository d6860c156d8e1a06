"""``clusters`` in a step's templates: every cluster of the run by name, as it is at the moment the template
renders — its tenant, region, labels, outcome so far and the outputs of its steps so far.

A cluster's steps never see another cluster's client, but they may wait on what another cluster did:
an ``assert`` with a ``retry`` whose condition reads ``clusters`` is a barrier between clusters running
in the same wave (the DR drill's DR cluster waits until its primary is down), and a later wave reads the
outputs of an earlier one. On ``fleet resume`` the outputs are those the journal holds.

``outcome`` is ``not_started``, ``running``, ``rolling_back``, or how the cluster ended (``succeeded``,
``failed``, ``rolled_back``, ``rollback_failed``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from fleet.engine.fanout import Target
from fleet.playbook.variables import ClusterInfo


class _Progress(Protocol):
    @property
    def outcome(self) -> str: ...

    @property
    def outputs(self) -> Mapping[str, Any]: ...


class Peers(Mapping[str, dict[str, Any]]):
    """A read-only live view of the run's clusters (``outcomes`` is the run's own, updated as it goes)."""

    def __init__(self, targets: Mapping[str, Target], outcomes: Mapping[str, _Progress]) -> None:
        self._targets = targets
        self._outcomes = outcomes

    def __getitem__(self, name: str) -> dict[str, Any]:
        target = self._targets[name]
        progress = self._outcomes[name]
        cluster = target.cluster
        info = ClusterInfo(name, cluster.tenant, cluster.region, cluster.labels) if cluster else ClusterInfo(name)
        # Until a run ends, a cluster in flight is recorded as "interrupted" (what a kill leaves).
        return info.as_peer("running" if progress.outcome == "interrupted" else progress.outcome, progress.outputs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)
