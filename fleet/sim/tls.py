"""Certificates of a simulated fleet: one generated CA, a server certificate for 127.0.0.1, client certificates.

Keys are EC P-256 (generating one takes well under a millisecond, so a fleet of 1,000 clusters starts
fast). One CA and one server certificate serve every cluster of a fleet; client certificates are issued
per cluster on demand and accepted only by the cluster that issued them (by fingerprint, see
``fleet.sim.auth``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def fingerprint(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert_pem).fingerprint(hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


class CertificateAuthority:
    """A self-signed CA that issues the fleet's server and client certificates."""

    def __init__(self, common_name: str = "fleet-sim-ca") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        name = _name(common_name)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self._cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, *, server: bool, organization: str | None = None) -> KeyPair:
        """A leaf certificate: for 127.0.0.1/localhost (``server``) or a client identity."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organization))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def server_context(ca: CertificateAuthority, server: KeyPair) -> ssl.SSLContext:
    """The TLS context every cluster listener shares: HTTP/2 and HTTP/1.1, optional client certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2", "http/1.1"])
    # ssl can only load a key pair from files; they live for the blink it takes to read them.
    with tempfile.TemporaryDirectory(prefix="fleet-sim-tls-") as tmp:
        cert_file = Path(tmp) / "server.crt"
        key_file = Path(tmp) / "server.key"
        cert_file.write_bytes(server.cert_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(server.key_pem)
        context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(cadata=ca.cert_pem.decode())
    # Clients may present a certificate (client-certificate auth); bearer tokens work without one.
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def fingerprint_der(cert_der: bytes) -> bytes:
    """SHA-256 fingerprint of a DER certificate, as presented by a TLS peer."""
    return x509.load_der_x509_certificate(cert_der).fingerprint(hashes.SHA256())
