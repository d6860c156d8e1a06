"""EKS tokens (moto's STS, checked by the sim) and GKE tokens (the local Google endpoint, checked by
the sim through tokeninfo) reach simulated clusters; tokens for another cluster, stale or tampered
ones do not."""

import base64
import time

import boto3
import pytest
import trio

from fleet.auth import AuthError, EksTokenProvider, GkeTokenProvider, google_credentials, presign_token
from fleet.inventory import load_inventory, resolve_connection
from fleet.secrets import SecretResolver
from fleet.sim.cloud_tokens import (
    EksIdentity,
    EksTokenRejected,
    eks_authenticator,
    gke_authenticator,
    verify_eks_token,
)
from tests.inventory.reach import namespaces
from tests.services import AWS_TEST_ACCESS_KEY, AWS_TEST_SECRET_KEY


def identities(moto):
    def secret_for(access_key):
        if access_key == AWS_TEST_ACCESS_KEY:
            return EksIdentity(AWS_TEST_SECRET_KEY, "arn:aws:iam::123456789012:user/deployer")
        assumed = moto.assumed_role_secret(access_key)
        return EksIdentity(*assumed) if assumed else None

    return secret_for


def test_eks_token_format_and_rules(moto):
    provider = EksTokenProvider("prod-eu-1", region="eu-west-1", sts_endpoint_url=moto.endpoint)
    token = provider.token()
    assert token.startswith("k8s-aws-v1.")
    assert "=" not in token
    url = base64.urlsafe_b64decode(token[11:] + "==").decode()
    assert "Action=GetCallerIdentity" in url
    assert "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id" in url
    secret_for = identities(moto)
    assert verify_eks_token(token, "prod-eu-1", secret_for) == "arn:aws:iam::123456789012:user/deployer"
    tampered = "k8s-aws-v1." + base64.urlsafe_b64encode(url.replace("2011-06-15", "2011-06-16").encode()).decode()
    sts = boto3.client("sts", endpoint_url=moto.endpoint, region_name="eu-west-1")
    short = presign_token(sts, "prod-eu-1", expires_in=60)  # X-Amz-Expires below the server's 15 minutes wins
    assert verify_eks_token(short, "prod-eu-1", secret_for, now=time.time() + 50)
    cases = [
        (lambda: verify_eks_token(short, "prod-eu-1", secret_for, now=time.time() + 62), "has expired"),
        (lambda: verify_eks_token(token, "prod-eu-2", secret_for), "signature does not match"),
        (lambda: verify_eks_token(token, "prod-eu-1", secret_for, now=time.time() + 15 * 60 + 1), "has expired"),
        (lambda: verify_eks_token(token, "prod-eu-1", secret_for, now=time.time() - 3600), "in the future"),
        (lambda: verify_eks_token(token, "prod-eu-1", lambda _ak: None), "unknown access key"),
        (lambda: verify_eks_token("k8s-aws-v2.abc", "prod-eu-1", secret_for), "not an EKS token"),
        (lambda: verify_eks_token(tampered, "prod-eu-1", secret_for), "signature does not match"),
    ]
    for check, reason in cases:
        with pytest.raises(EksTokenRejected, match=reason):
            check()


def test_eks_role_assumption_through_moto_sts(moto):
    role = "arn:aws:iam::123456789012:role/fleet-deployer"
    provider = EksTokenProvider("prod-eu-1", region="eu-west-1", role_arn=role, sts_endpoint_url=moto.endpoint)
    username = verify_eks_token(provider.token(), "prod-eu-1", identities(moto))
    assert username.startswith("arn:aws:sts::123456789012:assumed-role/fleet-deployer/")


def test_eks_without_credentials_is_an_auth_error(moto, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    provider = EksTokenProvider("c", region="eu-west-1", sts_endpoint_url=moto.endpoint)
    with pytest.raises(AuthError, match="eks token for c: signing failed"):
        provider.token()


async def test_eks_and_gke_clusters_in_one_inventory(sim_fleet, moto, google_endpoint, private_tmp, tmp_path):
    eks_cluster, gke_cluster, gke_impersonated = sim_fleet.clusters
    rejected = []
    await trio.to_thread.run_sync(eks_cluster.add_authenticator,
                                  eks_authenticator(eks_cluster.name, identities(moto), rejections=rejected))
    for sim in (gke_cluster, gke_impersonated):
        await trio.to_thread.run_sync(sim.add_authenticator, gke_authenticator(google_endpoint.tokeninfo_url))
    key_file, email = google_endpoint.service_account_file(private_tmp, "deployer")
    target = "tenant-admin@fleet-test.iam.gserviceaccount.com"
    google_endpoint.allow_impersonation(email, target)
    ca = sim_fleet.ca.cert_pem.decode().replace("\n", "\\n")
    inventory = tmp_path / "cloud.yaml"
    inventory.write_text(f"""\
clusters:
  - name: {eks_cluster.name}
    region: eu-west-1
    connection: {{masterUrl: "{eks_cluster.server}", caCertData: "{ca}"}}
    auth: {{type: eks, stsEndpoint: "{moto.endpoint}", roleArn: "arn:aws:iam::123456789012:role/deployer"}}
  - name: {gke_cluster.name}
    connection: {{masterUrl: "{gke_cluster.server}", caCertData: "{ca}"}}
    auth: {{type: gke, serviceAccountFile: "{key_file}"}}
  - name: {gke_impersonated.name}
    connection: {{masterUrl: "{gke_impersonated.server}", caCertData: "{ca}"}}
    auth:
      type: gke
      serviceAccountFile: "{key_file}"
      impersonate: {target}
      iamEndpoint: "{google_endpoint.iam_endpoint}"
""")
    resolver = SecretResolver()
    for cluster in load_inventory([inventory]).clusters:
        connection = await resolve_connection(cluster, resolver)
        assert "default" in await namespaces(connection), cluster.name
    assert rejected == []
    # The EKS cluster refuses a token minted for another cluster; the GKE ones refuse unknown tokens.
    other = EksTokenProvider("someone-else", region="eu-west-1", sts_endpoint_url=moto.endpoint).token()
    bad = sim_fleet.clusters[0].kubeconfig(token=other)
    from fleet.errors import ApiError
    from fleet.kube import KubeClient

    with KubeClient.from_kubeconfig(bad, name="eks") as client, pytest.raises(ApiError) as caught:
        await client.request("GET", "/api/v1/namespaces")
    assert caught.value.code == 401
    assert rejected == ["the signature does not match (a token for another cluster, or a wrong key)"]


def test_gke_disabled_account_is_an_auth_error(google_endpoint, private_tmp):
    key_file, email = google_endpoint.service_account_file(private_tmp, "gone")
    google_endpoint.disable(email)
    provider = GkeTokenProvider(lambda: google_credentials(service_account_file=str(key_file)))
    with pytest.raises(AuthError, match="gke token: google-auth could not refresh credentials") as caught:
        provider.token()
    assert str(key_file) not in str(caught.value)


def test_gke_impersonation_denied(google_endpoint, private_tmp):
    key_file, _email = google_endpoint.service_account_file(private_tmp, "deployer")
    provider = GkeTokenProvider(lambda: google_credentials(
        service_account_file=str(key_file), impersonate="root@fleet-test.iam.gserviceaccount.com",
        iam_endpoint=google_endpoint.iam_endpoint))
    with pytest.raises(AuthError, match="could not refresh"):
        provider.token()
