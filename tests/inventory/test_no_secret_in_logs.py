"""A whole CLI run at DEBUG level over clusters whose kubeconfigs and tokens come from OpenBao, Secrets
Manager, an oauth command, EKS (moto's STS) and GKE (a service-account key and the local Google token
endpoint): every secret value used is looked for in everything the run printed (logs, the JSON report)
and in every file it wrote (journal, artifacts, caches), plain and base64-encoded, and none is there."""

import base64
import json
import os
import subprocess
import sys

import boto3
import pytest
import trio
import yaml

from fleet.sim.cloud_tokens import eks_authenticator, gke_authenticator
from tests.auth.test_cloud_tokens import identities

EKS_PREFIX = "k8s-aws-v1."


def _forms(secret: str) -> set[str]:
    return {secret, base64.b64encode(secret.encode()).decode()}


def _key_material(key_file) -> list[str]:
    """The service-account key: its id and every line of the private key's body."""
    info = json.loads(key_file.read_text())
    body = [line for line in info["private_key"].splitlines() if line and not line.startswith("-----")]
    return [info["private_key_id"], *body]


@pytest.mark.slow
async def test_a_debug_run_prints_and_writes_no_secret(sim_fleet, openbao, moto, google_endpoint, private_tmp,
                                                       tmp_path):
    sim0, sim1, sim2 = sim_fleet.clusters
    token0, token1, token2, oauth_token = [await trio.to_thread.run_sync(sim.issue_token)
                                           for sim in (sim0, sim1, sim2, sim0)]
    await trio.to_thread.run_sync(sim2.add_authenticator, eks_authenticator(sim2.name, identities(moto)))
    await trio.to_thread.run_sync(sim1.add_authenticator, gke_authenticator(google_endpoint.tokeninfo_url))
    key_file, _email = google_endpoint.service_account_file(private_tmp, "logs-test")
    vault = openbao.client()
    vault.secrets.kv.v2.create_or_update_secret(
        path="logs-test/tenant-0", secret={"kubeconfig": yaml.safe_dump(sim0.kubeconfig(token=token0))},
        mount_point="secret",
    )
    vault.secrets.kv.v2.create_or_update_secret(path="logs-test/tenant-2", secret={"token": token2},
                                                mount_point="secret")
    sm = boto3.client("secretsmanager", endpoint_url=moto.endpoint, region_name="eu-west-1")
    sm.create_secret(Name="logs-test/tenant-1",
                     SecretString=json.dumps({"kubeconfig": yaml.safe_dump(sim1.kubeconfig(token=token1))}))
    inputs, run_dir = tmp_path / "inputs", tmp_path / "run"
    inputs.mkdir()
    run_dir.mkdir()
    (inputs / "ca.pem").write_bytes(sim_fleet.ca.cert_pem)
    oauth_file = private_tmp / "oauth-token.json"
    oauth_file.write_text(json.dumps({"access_token": oauth_token}))
    ca = {"caCertFile": "ca.pem"}
    inventory = inputs / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({
        "secrets": {
            "vault": {"address": openbao.address, "auth": {"method": "token", "token": "env:RUN_VAULT_TOKEN"}},
            "aws": {"region": "eu-west-1", "endpointUrl": moto.endpoint},
        },
        "clusters": [
            {"name": "sim-0", "connection": {"kubeconfig": "vault:secret/logs-test/tenant-0#kubeconfig"}},
            {"name": "sim-1", "connection": {"kubeconfig": "aws-sm:logs-test/tenant-1#kubeconfig"}},
            {"name": "sim-2", "connection": {"masterUrl": sim2.server, **ca,
                                             "token": "vault:secret/logs-test/tenant-2#token"}},
            {"name": "oauth-0", "connection": {"masterUrl": sim0.server, **ca},
             "auth": {"type": "oauth", "command": ["cat", str(oauth_file)], "template": "{{ json.access_token }}"}},
            {"name": "eks-2", "region": "eu-west-1", "connection": {"masterUrl": sim2.server, **ca},
             "auth": {"type": "eks", "clusterName": sim2.name, "stsEndpoint": moto.endpoint}},
            {"name": "gke-1", "connection": {"masterUrl": sim1.server, **ca},
             "auth": {"type": "gke", "serviceAccountFile": str(key_file)}},
            {"name": "gone", "connection": {"kubeconfig": "vault:secret/logs-test/absent#kubeconfig"}},
        ],
    }))
    env = {
        **os.environ,
        "RUN_VAULT_TOKEN": openbao.root_token,
        "FLEET_JOURNAL": str(run_dir / "journal.sqlite"),
        "FLEET_ARTIFACTS": str(run_dir / "artifacts"),
    }
    run = await trio.to_thread.run_sync(lambda: subprocess.run(
        [sys.executable, "-m", "fleet", "-vv", "get", "namespaces", "-i", str(inventory), "-o", "json"],
        capture_output=True, text=True, env=env, cwd=run_dir, timeout=120, check=False,
    ))
    everything = run.stdout + run.stderr
    assert run.returncode == 1, everything  # one cluster failed ...
    results, _end = json.JSONDecoder().raw_decode(run.stdout)  # a summary line may follow the JSON
    assert "vault:secret/logs-test/absent#kubeconfig: not found in Vault" in everything
    assert set(results) == {"sim-0", "sim-1", "sim-2", "oauth-0", "eks-2", "gke-1", "gone"}
    assert [name for name, result in results.items() if "error" in result] == ["gone"]  # the others did their work
    assert "DEBUG" in run.stderr  # the logs were as verbose as they get
    written = {path: path.read_bytes().decode("utf-8", "replace") for path in run_dir.rglob("*") if path.is_file()}
    with google_endpoint.lock:
        google_tokens = list(google_endpoint.tokens)
    assert google_tokens, "the GKE cluster was reached with a token from the local endpoint"
    secrets = [openbao.root_token, token0, token1, token2, oauth_token, *google_tokens, *_key_material(key_file)]
    for where, text in {"stdout/stderr": everything, **{str(p): t for p, t in written.items()}}.items():
        assert EKS_PREFIX not in text, f"an EKS token in {where}"
        for secret in secrets:
            for form in _forms(secret):
                assert form not in text, f"a secret in {where}"
