"""The explicit connection forms of an inventory entry: client certificate and key as data (from secret
references) or as files, a context chosen in a multi-context kubeconfig, and username/password."""

import base64

import trio
import yaml

from fleet.inventory import load_inventory, resolve_connection
from fleet.secrets import REGISTRY, SecretResolver
from tests.inventory.reach import namespaces
from tests.services import json_api


def _cert_user(kubeconfig_path):
    data = yaml.safe_load(kubeconfig_path.read_text())
    return data["users"][0]["user"]


async def test_client_certificate_and_key_as_data_or_files(sim_fleet, tmp_path, monkeypatch):
    sim = sim_fleet.clusters[0]
    user = _cert_user(await trio.to_thread.run_sync(sim.client_cert_kubeconfig))
    cert_pem = base64.b64decode(user["client-certificate-data"])
    key_pem = base64.b64decode(user["client-key-data"])
    (tmp_path / "ca.pem").write_bytes(sim_fleet.ca.cert_pem)
    (tmp_path / "client.crt").write_bytes(cert_pem)
    (tmp_path / "client.key").write_bytes(key_pem)
    (tmp_path / "client.key").chmod(0o600)
    monkeypatch.setenv("FLEET_TEST_CLIENT_CERT", cert_pem.decode())
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(yaml.safe_dump({"clusters": [
        {"name": "as-data", "connection": {"masterUrl": sim.server, "caCertFile": "ca.pem",
                                           "clientCertData": "env:FLEET_TEST_CLIENT_CERT",
                                           "clientKeyData": "file:client.key"}},
        {"name": "as-files", "connection": {"masterUrl": sim.server, "caCertFile": "ca.pem",
                                            "clientCertFile": "client.crt", "clientKeyFile": "client.key"}},
    ]}))
    resolver = SecretResolver()
    for cluster in load_inventory([inventory]).clusters:
        connection = await resolve_connection(cluster, resolver)
        assert connection.token_provider is None, cluster.name
        assert "default" in await namespaces(connection), cluster.name
    assert key_pem.decode().strip() in REGISTRY.values()  # the key, fetched through a reference, is redacted


async def test_context_chosen_in_a_multi_context_kubeconfig(sim_fleet, tmp_path):
    sim0, sim1, _ = sim_fleet.clusters
    merged = sim0.kubeconfig()
    other = sim1.kubeconfig()
    for section in ("clusters", "users", "contexts"):
        merged[section] += other[section]
    merged["current-context"] = sim1.name
    (tmp_path / "both.yaml").write_text(yaml.safe_dump(merged))
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(yaml.safe_dump({"clusters": [
        {"name": "chosen", "connection": {"kubeconfig": "file:both.yaml", "context": sim0.name}},
        {"name": "current", "connection": {"kubeconfig": "file:both.yaml"}},
    ]}))
    chosen, current = load_inventory([inventory]).clusters
    resolver = SecretResolver()
    assert (await resolve_connection(chosen, resolver)).server == sim0.server
    assert (await resolve_connection(current, resolver)).server == sim1.server


def basic_auth_server(username, password):
    """A plain-HTTP API that lists one namespace to ``Basic username:password`` and answers 401 otherwise."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def answer(request):
        if request.headers.get("Authorization") != expected:
            return 401, {"kind": "Status", "apiVersion": "v1", "code": 401, "reason": "Unauthorized"}
        return 200, {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {},
                     "items": [{"metadata": {"name": "default"}}]}

    return json_api(answer, name="basic-auth-api")


async def test_username_and_password_from_references(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_TEST_BASIC_USER", "deployer")
    (tmp_path / "password").write_text("basic-auth-s3cret\n")  # the final line break is not part of it
    with basic_auth_server("deployer", "basic-auth-s3cret") as url:
        inventory = tmp_path / "inv.yaml"
        inventory.write_text(yaml.safe_dump({"clusters": [{"name": "basic", "connection": {
            "masterUrl": url, "username": "env:FLEET_TEST_BASIC_USER", "password": "file:password"}}]}))
        cluster = load_inventory([inventory]).clusters[0]
        assert cluster.describe_credentials() == f"{url} (username env:FLEET_TEST_BASIC_USER, password file:password)"
        connection = await resolve_connection(cluster, SecretResolver())
        assert connection.token_provider is None
        assert await namespaces(connection) == ["default"]
    credential = base64.b64encode(b"deployer:basic-auth-s3cret").decode()  # what the Authorization header carries
    assert {"basic-auth-s3cret", credential} <= REGISTRY.values()
