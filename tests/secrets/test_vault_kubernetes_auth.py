"""Vault's kubernetes auth method: fleet logs in with a service account token, OpenBao checks it with
the cluster's TokenReview API (here a small local stand-in for that one endpoint)."""

import contextlib
import json
import secrets as pysecrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from fleet.secrets import SecretResolver, SecretsConfig
from fleet.secrets.config import KubernetesAuth, VaultConfig
from fleet.sim.tls import CertificateAuthority
from tests.services import json_api

NAMESPACE, ACCOUNT, UID = "fleet", "runner", "5d1d7c8e-0000-4000-8000-000000000001"


def service_account_jwt() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}",
        "kubernetes.io/serviceaccount/namespace": NAMESPACE,
        "kubernetes.io/serviceaccount/service-account.name": ACCOUNT,
        "kubernetes.io/serviceaccount/service-account.uid": UID,
    }
    return jwt.encode(crypt.RSASigner.from_string(pem), claims).decode()


@contextlib.contextmanager
def token_review_api(valid_token):
    """A stand-in for the cluster's TokenReview endpoint that knows one valid token."""
    reviews = []

    def answer(request):
        review = json.loads(request.body)
        ok = review["spec"]["token"] == valid_token
        reviews.append(ok)
        status = {"authenticated": ok}
        if ok:
            status["user"] = {"username": f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}", "uid": UID,
                              "groups": ["system:serviceaccounts"]}
        return 201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}

    with json_api(answer, name="token-review-api") as url:
        yield url, reviews


async def test_kubernetes_auth_login(openbao, tmp_path):
    token = service_account_jwt()
    (tmp_path / "token").write_text(token)
    client = openbao.client()
    mount = f"k8s-{pysecrets.token_hex(3)}"
    client.sys.create_or_update_policy(name="fleet-k8s-read", policy='path "secret/data/*" { capabilities = ["read"] }')
    path = f"k8s-auth-{pysecrets.token_hex(3)}"
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"k": "read-with-k8s-auth"}, mount_point="secret")
    with token_review_api(token) as (host, reviews):
        client.sys.enable_auth_method("kubernetes", path=mount)
        # A CA is required by the config; the stand-in speaks plain HTTP on loopback, so it is not used.
        ca = CertificateAuthority().cert_pem.decode()
        client.auth.kubernetes.configure(kubernetes_host=host, kubernetes_ca_cert=ca, disable_local_ca_jwt=True,
                                         mount_point=mount)
        client.auth.kubernetes.create_role(
            "fleet", bound_service_account_names=[ACCOUNT], bound_service_account_namespaces=[NAMESPACE],
            policies=["fleet-k8s-read"], mount_point=mount,
        )
        auth = KubernetesAuth(method="kubernetes", role="fleet", jwt=f"file:{tmp_path / 'token'}", mount=mount)
        config = VaultConfig(address=openbao.address, auth=auth, kv_versions={"secret": 2})
        resolver = SecretResolver(SecretsConfig(vault=config))
        assert await resolver.resolve(f"vault:secret/{path}#k") == "read-with-k8s-auth"
    assert reviews == [True]
