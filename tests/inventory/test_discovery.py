"""Discovery: EKS clusters of accounts/regions (moto), the contexts of a kubeconfig file, and a tenant
list from an HTTPS inventory API mapped by a sandboxed template; cached, refreshable, and a failing
source is an error naming it."""

import contextlib

import boto3
import pytest
import yaml

from fleet.errors import InputError
from fleet.inventory import load_inventory, resolve_connection
from fleet.inventory.discovery import DiscoveryError, discover
from fleet.secrets import SecretResolver
from fleet.sim.tls import server_context
from tests.inventory.reach import namespaces
from tests.services import json_api

OTHER_ACCOUNT_ROLE = "arn:aws:iam::210987654321:role/fleet-discovery"


def _eks(moto, region, role=None):
    if role is None:
        return boto3.client("eks", endpoint_url=moto.endpoint, region_name=region)
    sts = boto3.client("sts", endpoint_url=moto.endpoint, region_name=region)
    creds = sts.assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    return boto3.client("eks", endpoint_url=moto.endpoint, region_name=region,
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def _create(moto, region, name, tags, role=None):
    _eks(moto, region, role).create_cluster(
        name=name, roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={}, tags=tags
    )


async def test_eks_discovery_fills_endpoint_ca_and_auth_and_is_cached(moto, tmp_path):
    _create(moto, "eu-west-1", "prod-eu-1", {"tenant": "acme", "env": "prod", "Name": "not a label value!"})
    _create(moto, "eu-central-1", "prod-eu-2", {"tenant": "globex", "env": "prod"})
    _create(moto, "eu-west-1", "other-account-1", {"tenant": "initech"}, role=OTHER_ACCOUNT_ROLE)
    inventory_file = tmp_path / "eks.yaml"
    inventory_file.write_text(f"""\
defaults:
  labels: {{source: eks}}
sources:
  - type: eks
    regions: [eu-west-1, eu-central-1]
    accounts: [{{}}, {{roleArn: "{OTHER_ACCOUNT_ROLE}"}}]
    endpointUrl: {moto.endpoint}
    stsEndpoint: {moto.endpoint}
    labels: {{cloud: aws}}
    cache: PT1H
""")
    cache_dir = tmp_path / "cache"
    inventory = await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=cache_dir)
    by_name = inventory.by_name()
    assert sorted(by_name) == ["other-account-1", "prod-eu-1", "prod-eu-2"]
    assert by_name["other-account-1"].auth.role_arn == OTHER_ACCOUNT_ROLE
    assert by_name["other-account-1"].tenant == "initech"
    eu1 = by_name["prod-eu-1"]
    assert eu1.tenant == "acme"
    assert eu1.region == "eu-west-1"
    assert eu1.labels == {"source": "eks", "tenant": "acme", "env": "prod", "cloud": "aws"}
    assert eu1.connection.master_url.endswith(".eu-west-1.eks.amazonaws.com/")
    assert eu1.connection.ca_cert_data
    assert eu1.auth.type == "eks"
    assert eu1.auth.cluster_name == "prod-eu-1"
    assert eu1.auth.region == "eu-west-1"
    assert eu1.origin.startswith(f"{inventory_file}:4 (eks source): arn:aws:eks:eu-west-1:")
    # Cached: a cluster deleted since is still listed until a refresh.
    _eks(moto, "eu-central-1").delete_cluster(name="prod-eu-2")
    again = await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=cache_dir)
    assert sorted(again.by_name()) == ["other-account-1", "prod-eu-1", "prod-eu-2"]
    fresh = await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=cache_dir, refresh=True)
    assert sorted(fresh.by_name()) == ["other-account-1", "prod-eu-1"]
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in cache_dir.iterdir())


async def test_eks_discovery_of_two_accounts_with_the_same_names_is_refused(moto, tmp_path):
    _create(moto, "eu-west-1", "shared-name", {})
    _create(moto, "eu-west-1", "shared-name", {}, role=OTHER_ACCOUNT_ROLE)
    inventory_file = tmp_path / "eks.yaml"
    inventory_file.write_text(f"""\
sources:
  - type: eks
    regions: [eu-west-1]
    accounts: [{{}}, {{roleArn: "{OTHER_ACCOUNT_ROLE}"}}]
    endpointUrl: {moto.endpoint}
    stsEndpoint: {moto.endpoint}
""")
    with pytest.raises(InputError, match="cluster 'shared-name' is defined twice"):
        await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=tmp_path / "c")


async def test_a_failing_source_is_an_error_naming_it(moto, tmp_path):
    from tests.services import free_port

    inventory_file = tmp_path / "inv.yaml"
    inventory_file.write_text(f"""\
clusters:
  - name: static
    connection: {{inCluster: true}}
sources:
  - type: kubeconfig
    path: missing-kubeconfig.yaml
  - type: eks
    regions: [eu-west-1]
    endpointUrl: http://127.0.0.1:{free_port()}
""")
    with pytest.raises(DiscoveryError) as caught:
        await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=tmp_path / "c")
    message = str(caught.value)
    assert f"{inventory_file}:5 (kubeconfig source): cannot read" in message
    assert f"{inventory_file}:7 (eks source): EndpointConnectionError" in message


async def test_kubeconfig_contexts(sim_fleet, tmp_path):
    merged = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for sim in sim_fleet.clusters:
        config = sim.kubeconfig()
        for key in ("clusters", "users", "contexts"):
            merged[key].extend(config[key])
    (tmp_path / "fleet-kubeconfig.yaml").write_text(yaml.safe_dump(merged))
    inventory_file = tmp_path / "inv.yaml"
    inventory_file.write_text("""\
defaults: {tenant: ops, labels: {from: kubeconfig}}
sources:
  - {type: kubeconfig, path: fleet-kubeconfig.yaml, contexts: ["sim-0", "sim-2"]}
""")
    inventory = await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=tmp_path / "c")
    assert [c.name for c in inventory.clusters] == ["sim-0", "sim-2"]
    assert inventory.clusters[0].labels == {"from": "kubeconfig"}
    connection = await resolve_connection(inventory.clusters[1], SecretResolver())
    assert connection.server == sim_fleet.clusters[2].server
    assert "default" in await namespaces(connection)


@contextlib.contextmanager
def inventory_api(sim_fleet, body, token):
    """A local HTTPS inventory API that wants ``Bearer <token>``."""
    requests_seen = []

    def answer(request):
        requests_seen.append(request.path)
        if request.headers.get("Authorization") != f"Bearer {token}":
            return 401, {"error": "unauthorized"}
        return 200, body

    context = server_context(sim_fleet.ca, sim_fleet.ca.issue("inventory-api", server=True))
    with json_api(answer, ssl_context=context, name="inventory-api") as url:
        yield f"{url}/v1/tenants", requests_seen


TEMPLATE = """\
name: {{ record.cluster }}
tenant: {{ record.tenant }}
labels: {{ record.labels | to_yaml }}
connection:
  kubeconfig: file:kubeconfigs/{{ record.cluster }}.yaml
"""


async def test_inventory_api_records_become_clusters(sim_fleet, tmp_path, monkeypatch):
    (tmp_path / "ca.pem").write_bytes(sim_fleet.ca.cert_pem)
    monkeypatch.setenv("FLEET_TEST_API_TOKEN", "inventory-api-bearer-token")
    body = {"tenants": [
        {"tenant": f"tenant-{i}", "cluster": sim.name, "labels": {"plan": "gold" if i else "free"}}
        for i, sim in enumerate(sim_fleet.clusters)
    ]}
    with inventory_api(sim_fleet, body, "inventory-api-bearer-token") as (url, seen):
        inventory_file = sim_fleet.out_dir / "api-inventory.yaml"
        inventory_file.write_text(yaml.safe_dump({
            "defaults": {"labels": {"source": "api"}},
            "sources": [{"type": "api", "url": url, "token": "env:FLEET_TEST_API_TOKEN", "records": "tenants",
                         "caFile": str(tmp_path / "ca.pem"), "template": TEMPLATE}],
        }))
        cache_dir = tmp_path / "cache"
        inventory = await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=cache_dir)
        assert [c.name for c in inventory.clusters] == [s.name for s in sim_fleet.clusters]
        assert inventory.clusters[1].tenant == "tenant-1"
        assert inventory.clusters[1].labels == {"source": "api", "plan": "gold"}
        connection = await resolve_connection(inventory.clusters[1], SecretResolver())
        assert "default" in await namespaces(connection)
        await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=cache_dir)
        assert len(seen) == 1  # the second discovery came from the cache

        monkeypatch.setenv("FLEET_TEST_API_TOKEN", "wrong-token")
        with pytest.raises(DiscoveryError, match="answered HTTP 401"):
            await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=cache_dir, refresh=True)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ ''.__class__.__mro__ }}", "record 0: the template failed"),
        ("name: {{ record.missing }}", "record 0: the template failed"),
        ("name: x\nconnection: {inCluster: true}\nextra: 1", "record 0: extra: Extra inputs are not permitted"),
        ("name: [", "record 0: the template did not render YAML"),
    ],
)
async def test_bad_templates_name_the_source_and_record(sim_fleet, tmp_path, monkeypatch, template, message):
    monkeypatch.setenv("FLEET_TEST_API_TOKEN", "t0ken-value")
    (tmp_path / "ca.pem").write_bytes(sim_fleet.ca.cert_pem)
    with inventory_api(sim_fleet, [{"cluster": "a"}], "t0ken-value") as (url, _seen):
        inventory_file = tmp_path / "api.yaml"
        inventory_file.write_text(yaml.safe_dump({"sources": [
            {"type": "api", "url": url, "token": "env:FLEET_TEST_API_TOKEN", "caFile": "ca.pem", "template": template}
        ]}))
        with pytest.raises(DiscoveryError) as caught:
            await discover(load_inventory([inventory_file]), SecretResolver(), cache_dir=tmp_path / "c")
    assert f"{inventory_file}:2 (api source): {message}" in str(caught.value)
