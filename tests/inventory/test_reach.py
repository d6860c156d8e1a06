"""Kubeconfigs kept per tenant in OpenBao (KV v2) and in Secrets Manager (moto), and explicit fields
from mixed sources, reach their simulated clusters through the official client."""

import base64
import json
import logging
import os
import stat
from pathlib import Path

import boto3
import pytest
import trio
import urllib3
import yaml

from fleet.errors import ClusterError
from fleet.inventory import load_inventory, resolve_connection
from fleet.kube import ConnectFailed
from fleet.redaction import RedactingFilter
from fleet.secrets import REGISTRY, SecretResolver, install_log_redaction, quiet_payload_loggers
from tests.inventory.reach import client_for, namespaces


@pytest.fixture
def tenant_inventory(sim_fleet, openbao, moto, tmp_path, monkeypatch):
    sim0, sim1, sim2 = sim_fleet.clusters
    vault = openbao.client()
    vault.secrets.kv.v2.create_or_update_secret(
        path="tenants/tenant-0", secret={"kubeconfig": yaml.safe_dump(sim0.kubeconfig())}, mount_point="secret"
    )
    sm = boto3.client("secretsmanager", endpoint_url=moto.endpoint, region_name="eu-west-1")
    kubeconfig1 = yaml.safe_dump(sim1.kubeconfig())
    sm.create_secret(Name="tenants/tenant-1", SecretString=json.dumps({"kubeconfig": kubeconfig1}))
    token2 = sim2.issue_token()
    vault.secrets.kv.v2.create_or_update_secret(path="tenants/tenant-2", secret={"token": token2},
                                                mount_point="secret")
    ca_pem = sim_fleet.ca.cert_pem.decode()
    monkeypatch.setenv("FLEET_TEST_CA", ca_pem)
    monkeypatch.setenv("FLEET_TEST_VAULT_TOKEN", openbao.root_token)
    inventory = tmp_path / "tenants.yaml"
    inventory.write_text(f"""\
secrets:
  vault:
    address: {openbao.address}
    auth: {{method: token, token: env:FLEET_TEST_VAULT_TOKEN}}
  aws:
    region: eu-west-1
    endpointUrl: {moto.endpoint}
defaults:
  labels: {{env: sim}}
clusters:
  - name: sim-0
    tenant: tenant-0
    connection: {{kubeconfig: "vault:secret/tenants/tenant-0#kubeconfig", context: sim-0}}
  - name: sim-1
    tenant: tenant-1
    connection: {{kubeconfig: "aws-sm:tenants/tenant-1#kubeconfig"}}
  - name: sim-2
    tenant: tenant-2
    connection:
      masterUrl: {sim2.server}
      caCertData: env:FLEET_TEST_CA
      token: vault:secret/tenants/tenant-2#token
  - name: missing
    tenant: tenant-3
    connection: {{kubeconfig: "vault:secret/tenants/tenant-3#kubeconfig"}}
""")
    secrets = [openbao.root_token, token2, sim0.token, sim1.token]
    return load_inventory([inventory]), secrets


async def _resolve_all(inventory):
    resolver = SecretResolver(inventory.secrets, base_dir=inventory.secrets_base_dir)
    results = {}

    async def one(cluster):
        try:
            results[cluster.name] = await resolve_connection(cluster, resolver)
        except ClusterError as e:
            results[cluster.name] = e

    async with trio.open_nursery() as nursery:
        for cluster in inventory.clusters:
            nursery.start_soon(one, cluster)
    return results


async def test_kubeconfigs_from_openbao_and_secrets_manager_reach_their_clusters(tenant_inventory, caplog):
    inventory, secrets = tenant_inventory
    caplog.handler.addFilter(RedactingFilter())
    quiet_payload_loggers()
    with caplog.at_level(logging.DEBUG):
        results = await _resolve_all(inventory)
        reached = {}
        for name in ("sim-0", "sim-1", "sim-2"):
            connection = results[name]
            reached[name] = await namespaces(connection)
    assert all("default" in names for names in reached.values()), reached
    # A missing secret fails that cluster alone, naming the reference and not any value.
    error = results["missing"]
    assert isinstance(error, ClusterError)
    assert str(error) == "cluster missing: secret vault:secret/tenants/tenant-3#kubeconfig: not found in Vault"
    # Every secret used was registered, and none reached a log record.
    registered = REGISTRY.values()
    for secret in secrets:
        assert secret in registered
        assert secret not in caplog.text
        assert secret not in str(error)
    assert "resolved secret vault:secret/tenants/tenant-0#kubeconfig" in caplog.text


async def test_client_certificate_files_are_private_and_removed(sim_fleet, tmp_path):
    cert_kubeconfig = await trio.to_thread.run_sync(sim_fleet.clusters[0].client_cert_kubeconfig)
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(f"clusters:\n  - name: sim-0\n    connection: {{kubeconfig: 'file:{cert_kubeconfig}'}}\n")
    cluster = load_inventory([inventory]).clusters[0]
    connection = await resolve_connection(cluster, SecretResolver())
    assert connection.token_provider is None
    client = client_for(connection)
    key_file = Path(client.api_client.configuration.key_file)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_file.parent).st_mode) == 0o700
    listing = await client.request("GET", "/api/v1/namespaces")
    assert "default" in [item["metadata"]["name"] for item in listing["items"]]
    client.close()
    assert not await trio.Path(key_file).exists()


async def test_insecure_skip_verify_warns_and_tls_is_verified_by_default(sim_fleet, tmp_path, caplog):
    sim = sim_fleet.clusters[1]
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        f"clusters:\n"
        f"  - name: verified\n    connection: {{masterUrl: '{sim.server}', token: '{sim.token}'}}\n"
        f"  - name: insecure\n    connection: {{masterUrl: '{sim.server}', token: '{sim.token}', "
        f"insecureSkipVerify: true}}\n"
    )
    verified, insecure = load_inventory([inventory]).clusters
    resolver = SecretResolver()
    with caplog.at_level(logging.WARNING):
        connection = await resolve_connection(verified, resolver)
        with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await namespaces(connection)
        assert "TLS verification is OFF" not in caplog.text
        connection = await resolve_connection(insecure, resolver)
        assert "cluster insecure: TLS verification is OFF" in caplog.text
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
        assert "default" in await namespaces(connection)


async def test_inline_kubeconfig_and_bad_kubeconfig_secret(sim_fleet, tmp_path, monkeypatch):
    sim = sim_fleet.clusters[2]
    monkeypatch.setenv("FLEET_TEST_NOT_YAML", "token: [unclosed s3cr3t-inside")
    inventory = tmp_path / "inv.yaml"
    inline = yaml.safe_dump(sim.kubeconfig())
    inventory.write_text(yaml.safe_dump({"clusters": [
        {"name": "inline", "connection": {"kubeconfig": inline}},
        {"name": "bad", "connection": {"kubeconfig": "env:FLEET_TEST_NOT_YAML"}},
    ]}))
    good, bad = load_inventory([inventory]).clusters
    resolver = SecretResolver()
    connection = await resolve_connection(good, resolver)
    assert "default" in await namespaces(connection)
    with pytest.raises(ClusterError) as caught:
        await resolve_connection(bad, resolver)
    assert str(caught.value) == "cluster bad: the kubeconfig from env:FLEET_TEST_NOT_YAML is not valid YAML"


def test_install_log_redaction_adds_one_filter_per_handler():
    logger = logging.getLogger("fleet.test.install")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        install_log_redaction(logger)
        install_log_redaction(logger)
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    finally:
        logger.removeHandler(handler)


def test_ca_data_accepts_pem_or_base64(sim_fleet):
    pem = sim_fleet.ca.cert_pem.decode()
    from fleet.inventory.connection import _as_b64_pem

    assert base64.b64decode(_as_b64_pem(pem)).decode() == pem
    assert _as_b64_pem(base64.b64encode(pem.encode()).decode()) == base64.b64encode(pem.encode()).decode()
