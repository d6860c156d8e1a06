"""Helpers of the integration tests: talk to a resolved connection with the official client."""

from kubernetes import client as k8s


def namespaces_official(connection) -> list[str]:
    """List namespaces with the official kubernetes client configured from ``connection``."""
    api = k8s.ApiClient(connection.client_configuration())
    try:
        return [ns.metadata.name for ns in k8s.CoreV1Api(api).list_namespace(_request_timeout=10).items]
    finally:
        api.close()
