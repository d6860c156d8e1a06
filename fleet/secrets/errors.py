"""Errors of secret resolution: they name the reference, never the value."""

from __future__ import annotations

from fleet.errors import ClusterError


class SecretError(ClusterError):
    """A secret could not be resolved (missing, forbidden, unreachable store). Fails the cluster that
    needed it, never the run. ``reference`` is the text the user wrote."""

    def __init__(self, reference: str, problem: str, *, cluster: str | None = None) -> None:
        self.reference = reference
        self.problem = problem
        super().__init__(f"secret {reference}: {problem}", cluster=cluster)

    def for_cluster(self, cluster: str) -> SecretError:
        return SecretError(self.reference, self.problem, cluster=cluster)
