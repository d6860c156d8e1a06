"""Auth through the inventory against the sim: a kubeconfig exec plugin, the oauth command provider,
application default credentials for GKE, and the in-cluster service account."""

import sys
import textwrap

import trio
import yaml

from fleet.auth import ExecTokenProvider, StaticTokenProvider
from fleet.auth.token_file import FileTokenProvider
from fleet.inventory import connection as connection_module
from fleet.inventory import load_inventory, resolve_connection
from fleet.secrets import SecretResolver
from fleet.sim.cloud_tokens import gke_authenticator
from tests.inventory.reach import namespaces


def _printer(tmp_path, token_file, exec_credential):
    """A script that prints the token in ``token_file`` (as an ExecCredential, or as JSON)."""
    body = (
        'print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",'
        ' "status": {"token": token}}))'
        if exec_credential
        else 'print(json.dumps({"access_token": token, "token_type": "Bearer"}))'
    )
    script = tmp_path / ("plugin.py" if exec_credential else "sso.py")
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""\
        import json, pathlib
        token = pathlib.Path({str(token_file)!r}).read_text().strip()
        {body}
    """))
    script.chmod(0o700)
    return script


async def test_exec_plugin_and_oauth_command(sim_fleet, tmp_path):
    sim0, sim1, _ = sim_fleet.clusters
    token_file = tmp_path / "current-token"
    token_file.write_text(await trio.to_thread.run_sync(sim0.issue_token))
    kubeconfig = sim0.kubeconfig()
    kubeconfig["users"][0]["user"] = {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(_printer(tmp_path, token_file, True)),
        "interactiveMode": "Never",
    }}
    (tmp_path / "exec-kubeconfig.yaml").write_text(yaml.safe_dump(kubeconfig))
    oauth_token_file = tmp_path / "oauth-token"
    oauth_token_file.write_text(await trio.to_thread.run_sync(sim1.issue_token))
    ca = sim_fleet.ca.cert_pem.decode()
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump({"clusters": [
        {"name": "sim-0", "connection": {"kubeconfig": "file:exec-kubeconfig.yaml"}},
        {"name": "sim-1", "connection": {"masterUrl": sim1.server, "caCertData": ca},
         "auth": {"type": "oauth", "command": [str(_printer(tmp_path, oauth_token_file, False))],
                  "template": "{{ json.access_token }}", "cache": "PT0S"}},
    ]}))
    exec_cluster, oauth_cluster = load_inventory([tmp_path / "inv.yaml"]).clusters
    resolver = SecretResolver()
    exec_connection = await resolve_connection(exec_cluster, resolver)
    assert isinstance(exec_connection.token_provider, ExecTokenProvider)
    assert "exec" not in exec_connection.user  # the provider runs it, not the client
    assert "default" in await namespaces(exec_connection)
    oauth_connection = await resolve_connection(oauth_cluster, resolver)
    assert "default" in await namespaces(oauth_connection)
    # PT0S: the command runs for every token, so a rotated token is picked up at once.
    oauth_token_file.write_text(await trio.to_thread.run_sync(sim1.issue_token))
    assert oauth_connection.token_provider.token() == oauth_token_file.read_text()


async def test_gke_application_default_credentials(sim_fleet, google_endpoint, private_tmp, tmp_path, monkeypatch):
    sim = sim_fleet.clusters[2]
    await trio.to_thread.run_sync(sim.add_authenticator, gke_authenticator(google_endpoint.tokeninfo_url))
    key_file, _email = google_endpoint.service_account_file(private_tmp, "adc")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    ca = sim_fleet.ca.cert_pem.decode()
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump({"clusters": [
        {"name": "gke", "connection": {"masterUrl": sim.server, "caCertData": ca}, "auth": {"type": "gke"}},
    ]}))
    cluster = load_inventory([tmp_path / "inv.yaml"]).clusters[0]
    connection = await resolve_connection(cluster, SecretResolver())
    assert "default" in await namespaces(connection)


async def test_in_cluster_service_account(sim_fleet, tmp_path, monkeypatch):
    sim = sim_fleet.clusters[1]
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "ca.crt").write_bytes(sim_fleet.ca.cert_pem)
    (account / "token").write_text(await trio.to_thread.run_sync(sim.issue_token))
    monkeypatch.setattr(connection_module, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(sim.port))
    (tmp_path / "inv.yaml").write_text("clusters:\n  - name: here\n    connection: {inCluster: true}\n")
    cluster = load_inventory([tmp_path / "inv.yaml"]).clusters[0]
    connection = await resolve_connection(cluster, SecretResolver())
    assert isinstance(connection.token_provider, FileTokenProvider)
    assert connection.server == f"https://127.0.0.1:{sim.port}"
    assert "default" in await namespaces(connection)


async def test_kubeconfig_token_becomes_a_static_provider(sim_fleet, tmp_path):
    sim = sim_fleet.clusters[0]
    (tmp_path / "inv.yaml").write_text(
        f"clusters:\n  - name: s\n    connection: {{kubeconfig: 'file:{sim.kubeconfig_path}'}}\n"
    )
    connection = await resolve_connection(load_inventory([tmp_path / "inv.yaml"]).clusters[0], SecretResolver())
    assert isinstance(connection.token_provider, StaticTokenProvider)
    assert connection.token_provider.token() == sim.token
    assert "token" not in connection.user
