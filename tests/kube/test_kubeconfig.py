"""A client's certificate files (``fleet.kube.kubeconfig``): private to the client, gone when it closes."""

from __future__ import annotations

import base64
import gc
import stat
from pathlib import Path

import pytest
import trio
import yaml

from fleet.errors import InputError
from fleet.kube import KubeClient

pytestmark = pytest.mark.sim_only  # a client certificate the sim trusts


def _files(client: KubeClient) -> list[Path]:
    config = client.api_client.configuration
    return [Path(p) for p in (config.ssl_ca_cert, config.cert_file, config.key_file)]


async def test_certificate_files_are_private_and_removed_when_the_client_closes(cluster):
    kubeconfig = await trio.to_thread.run_sync(cluster.sim.client_cert_kubeconfig)
    client = KubeClient.from_kubeconfig(kubeconfig)
    files = _files(client)
    directory = files[0].parent
    assert all(f.parent == directory for f in files)  # one directory of this client's, not shared temp files
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [stat.S_IMODE(f.stat().st_mode) for f in files] == [0o600] * 3
    assert b"PRIVATE KEY" in files[2].read_bytes()
    namespaces = await client.request("GET", "/api/v1/namespaces")  # the certificate authenticates
    assert "default" in {i["metadata"]["name"] for i in namespaces["items"]}
    client.close()
    assert [f.exists() for f in files] == [False] * 3
    assert not directory.exists()
    client.close()  # twice is fine


async def test_clients_of_one_kubeconfig_do_not_share_files(cluster):
    kubeconfig = await trio.to_thread.run_sync(cluster.sim.client_cert_kubeconfig)
    first = KubeClient.from_kubeconfig(kubeconfig)
    second = KubeClient.from_kubeconfig(kubeconfig)
    try:
        assert set(_files(first)).isdisjoint(_files(second))
        first.close()
        assert all(f.exists() for f in _files(second))
        assert await second.ping()
    finally:
        second.close()
    assert not any(f.exists() for f in _files(second))


def test_a_client_never_closed_leaves_no_files_once_collected(cluster):
    kubeconfig = cluster.sim.client_cert_kubeconfig()
    client = KubeClient.from_kubeconfig(kubeconfig)
    files = _files(client)
    client.api_client.rest_client.close()  # the connections only: the files are left to the collector
    del client
    gc.collect()
    assert not any(f.exists() for f in files)


def test_bad_certificate_data_names_the_field(cluster):
    config = cluster.sim.kubeconfig()
    config["users"][0]["user"] = {"client-certificate-data": "not base64!", "client-key-data": "AAAA"}
    with pytest.raises(InputError, match=r"user.client-certificate-data: client-certificate-data is not base64"):
        KubeClient.from_kubeconfig(config)


async def test_relative_certificate_paths_are_read_from_the_kubeconfig_folder(cluster, tmp_path):
    """As kubectl reads them: ``client-key: certs/me.key`` is next to the kubeconfig, not in the working dir."""
    source = yaml.safe_load((await trio.to_thread.run_sync(cluster.sim.client_cert_kubeconfig)).read_text())
    (tmp_path / "conf" / "certs").mkdir(parents=True)
    cluster_entry, user = source["clusters"][0]["cluster"], source["users"][0]["user"]
    for section, key, relative in (
        (cluster_entry, "certificate-authority", "ca.crt"),
        (user, "client-certificate", "certs/me.crt"),
        (user, "client-key", "certs/me.key"),
    ):
        (tmp_path / "conf" / relative).write_bytes(base64.b64decode(section.pop(f"{key}-data")))
        section[key] = relative
    path = tmp_path / "conf" / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(source))
    with KubeClient.from_kubeconfig(path) as client:
        assert Path(client.api_client.configuration.key_file) == tmp_path / "conf" / "certs" / "me.key"
        assert await client.ping()
    assert (tmp_path / "conf" / "certs" / "me.key").exists()  # the user's own files are never removed


def test_credentials_the_loader_renews_are_not_fixed():
    from fleet.kube.kubeconfig import fixed_credentials

    def config(user: dict[str, object]) -> dict[str, object]:
        return {
            "current-context": "a",
            "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}, {"name": "b", "context": {}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "u", "user": user}],
        }

    assert fixed_credentials(config({"token": "t0ken-value"}), None)
    assert fixed_credentials(config({"client-certificate-data": "Y2VydA==", "client-key-data": "a2V5"}), None)
    assert fixed_credentials(config({"token": "t0ken-value"}), "b")  # a context with no user: nothing to renew
    assert not fixed_credentials(config({"exec": {"command": "get-token"}}), None)
    assert not fixed_credentials(config({"auth-provider": {"name": "oidc", "config": {}}}), "a")
