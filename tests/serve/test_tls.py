"""``fleet serve --certfile --keyfile``: HTTPS with the given certificate (a self-signed one made here);
a client that does not trust it, or speaks plain HTTP, gets nothing."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleet.serve.server import Listen
from tests.serve.conftest import bearer, body, running, wait_ended

pytestmark = pytest.mark.sim_only


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleet-serve-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "tls.crt", directory / "tls.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certfile, keyfile


async def test_the_server_speaks_https_with_the_given_certificate(serve_config, tmp_path):
    certfile, keyfile = self_signed(tmp_path)
    listen = Listen("127.0.0.1", 0, certfile=certfile, keyfile=keyfile)
    async with running(serve_config, listen) as url:
        assert url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(certfile))
        async with httpx.AsyncClient(base_url=url, verify=trusted) as client:
            answer = await client.post("/v1/playbooks/hello/runs", content=body({"name": "over-tls"}), headers=bearer())
            assert answer.status_code == 202, answer.text
            assert (await wait_ended(client, answer.json()["run_id"]))["status"] == "succeeded"
        async with httpx.AsyncClient(base_url=url) as untrusting:
            with pytest.raises(httpx.ConnectError) as refused:
                await untrusting.get("/healthz")
            cause = refused.value.__cause__
            while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
                cause = cause.__cause__ or cause.__context__
            assert isinstance(cause, ssl.SSLCertVerificationError), repr(refused.value)
        async with httpx.AsyncClient(base_url=url.replace("https://", "http://")) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get("/healthz")
