"""A whole CLI run at DEBUG level over clusters whose kubeconfigs and tokens come from OpenBao and
Secrets Manager: every secret value used is looked for in everything the run printed, and none is there."""

import json
import os
import subprocess
import sys

import boto3
import pytest
import yaml


@pytest.mark.slow
def test_a_debug_run_prints_no_secret(sim_fleet, openbao, moto, tmp_path):
    sim0, sim1, sim2 = sim_fleet.clusters
    token0, token1, token2 = (sim.issue_token() for sim in sim_fleet.clusters)
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
    (tmp_path / "ca.pem").write_bytes(sim_fleet.ca.cert_pem)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({
        "secrets": {
            "vault": {"address": openbao.address, "auth": {"method": "token", "token": "env:RUN_VAULT_TOKEN"}},
            "aws": {"region": "eu-west-1", "endpointUrl": moto.endpoint},
        },
        "clusters": [
            {"name": "sim-0", "connection": {"kubeconfig": "vault:secret/logs-test/tenant-0#kubeconfig"}},
            {"name": "sim-1", "connection": {"kubeconfig": "aws-sm:logs-test/tenant-1#kubeconfig"}},
            {"name": "sim-2", "connection": {"masterUrl": sim2.server, "caCertFile": "ca.pem",
                                             "token": "vault:secret/logs-test/tenant-2#token"}},
            {"name": "gone", "connection": {"kubeconfig": "vault:secret/logs-test/absent#kubeconfig"}},
        ],
    }))
    env = {**os.environ, "RUN_VAULT_TOKEN": openbao.root_token}
    run = subprocess.run(
        [sys.executable, "-m", "fleet", "-v", "get", "namespaces", "-i", str(inventory), "-o", "json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    everything = run.stdout + run.stderr
    assert run.returncode == 1, everything  # one cluster failed ...
    results, _end = json.JSONDecoder().raw_decode(run.stdout)  # a summary line may follow the JSON
    assert "vault:secret/logs-test/absent#kubeconfig: not found in Vault" in everything
    for name in ("sim-0", "sim-1", "sim-2"):  # ... the others did their work
        assert name in json.dumps(results)
    assert "DEBUG" in run.stderr  # the logs were as verbose as they get
    for secret in (openbao.root_token, token0, token1, token2):
        assert secret not in everything
