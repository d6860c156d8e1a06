"""Authentication per cluster: the admin token, tokens with a lifetime, revocation, client certificates, hooks."""

from __future__ import annotations

import json
import time

import kubernetes
import pytest
from kubernetes.client import ApiException

pytestmark = pytest.mark.sim_only


def _core(cluster, token=None, kubeconfig=None, tmp_path=None):
    path = kubeconfig or cluster.kubeconfig_path
    if token is not None:
        path = cluster.write_kubeconfig(tmp_path / f"token-{abs(hash(token))}.yaml", token=token)
    api_client = kubernetes.config.new_client_from_config(config_file=str(path))
    return api_client, kubernetes.client.CoreV1Api(api_client)


def _assert_unauthorized(call):
    with pytest.raises(ApiException) as e:
        call()
    assert e.value.status == 401
    status = json.loads(e.value.body)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Unauthorized", 401)


def test_the_admin_token_works_and_a_wrong_one_gets_401(sim, tmp_path):
    cluster = sim.clusters[1]
    api_client, core = _core(cluster)
    with api_client:
        assert core.read_namespace("default").metadata.name == "default"
    api_client, core = _core(cluster, tmp_path=tmp_path, token="not-a-token")
    with api_client:
        _assert_unauthorized(lambda: core.read_namespace("default"))


def test_each_cluster_has_its_own_credentials(sim, tmp_path):
    first, second = sim.clusters[0], sim.clusters[1]
    assert first.token != second.token
    api_client, core = _core(second, tmp_path=tmp_path, token=first.token)
    with api_client:
        _assert_unauthorized(lambda: core.list_namespace())


def test_a_token_with_a_lifetime_expires(sim, tmp_path):
    cluster = sim.clusters[1]
    token = cluster.issue_token(ttl=1.0)
    api_client, core = _core(cluster, tmp_path=tmp_path, token=token)
    with api_client:
        core.list_namespace()
        deadline = time.monotonic() + 10
        status = 200
        while status == 200:
            assert time.monotonic() < deadline, "the token never expired"
            try:
                core.list_namespace()
            except ApiException as e:
                status = e.status
            else:
                time.sleep(0.1)
        assert status == 401
    assert [r.status for r in cluster.requests() if r.user == ""][-1:] == [401]


def test_a_revoked_token_gets_401(sim, tmp_path):
    cluster = sim.clusters[1]
    token = cluster.issue_token(user="someone")
    api_client, core = _core(cluster, tmp_path=tmp_path, token=token)
    with api_client:
        core.list_namespace()
        assert cluster.requests()[-1].user == "someone"
        cluster.revoke_token(token)
        _assert_unauthorized(lambda: core.list_namespace())


def test_client_certificates_are_accepted_by_their_cluster_only(sim, tmp_path):
    cluster, other = sim.clusters[1], sim.clusters[2]
    kubeconfig = cluster.client_cert_kubeconfig(user="cert-user")
    api_client, core = _core(cluster, kubeconfig=kubeconfig)
    with api_client:
        assert core.read_namespace("default").metadata.name == "default"
    assert cluster.requests()[-1].user == "cert-user"

    # The same certificate against another cluster of the fleet (same CA) is refused.
    api_client, core = _core(cluster, kubeconfig=kubeconfig)
    api_client.configuration.host = other.server
    with api_client:
        _assert_unauthorized(lambda: core.read_namespace("default"))


def test_an_authenticator_hook_accepts_its_own_tokens(sim, tmp_path):
    cluster = sim.clusters[1]
    cluster.add_authenticator(lambda token: "hooked-user" if token == "hooked-token-123" else None)
    api_client, core = _core(cluster, tmp_path=tmp_path, token="hooked-token-123")
    with api_client:
        core.list_namespace()
    assert cluster.requests()[-1].user == "hooked-user"


def test_kubectl_with_a_client_certificate(sim, kubectl):
    cluster = sim.clusters[0]
    kubeconfig = cluster.client_cert_kubeconfig(user="kubectl-cert-user")
    result = kubectl("--kubeconfig", str(kubeconfig), "get", "namespace", "default", "-o", "name")
    assert result.stdout.strip() == "namespace/default"
    assert cluster.requests()[-1].user == "kubectl-cert-user"


def test_an_exec_upgrade_with_an_expired_token_gets_401_as_from_a_real_api_server(sim, tmp_path):
    """The WebSocket upgrade of exec answers an expired token with 401 and a Status (a client refreshes
    its token on 401; the sim used to refuse the upgrade with 403)."""
    import ssl

    import websocket

    cluster = sim.clusters[1]
    token = cluster.issue_token(ttl=0.2)
    time.sleep(0.3)
    url = cluster.server.replace("https://", "wss://") + "/api/v1/namespaces/default/pods/any/exec?command=true"
    ca = tmp_path / "ca.pem"
    ca.write_bytes(sim.ca.cert_pem)
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(
            url,
            header=[f"Authorization: Bearer {token}"],
            subprotocols=["v4.channel.k8s.io"],
            sslopt={"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": str(ca)},
            timeout=10,
        )
    assert e.value.status_code == 401
    assert json.loads(e.value.resp_body)["reason"] == "Unauthorized"
    assert cluster.requests()[-1].status == 401
