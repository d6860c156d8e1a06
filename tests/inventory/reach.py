"""Helpers of the integration tests: reach a resolved connection's cluster through ``KubeClient``."""

from fleet.kube import KubeClient
from fleet.settings import FleetSettings, RetrySettings


def client_for(connection) -> KubeClient:
    """A client for ``connection`` as the CLI opens one (one attempt per request: failures show at once)."""
    return KubeClient.from_kubeconfig(
        connection.kubeconfig,
        name=connection.cluster,
        token_provider=connection.token_provider,
        settings=FleetSettings(retry=RetrySettings(attempts=1)),
    )


async def namespaces(connection) -> list[str]:
    """The names of the namespaces the cluster of ``connection`` lists."""
    with client_for(connection) as client:
        listing = await client.request("GET", "/api/v1/namespaces")
    return [item["metadata"]["name"] for item in listing.get("items") or []]
