from pathlib import Path

import pytest

from fleet.secrets import ReferenceSyntaxError, SecretRef, is_reference, parse_reference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vault:kv/tenants/acme#kubeconfig", SecretRef("vault", "kv/tenants/acme", "kubeconfig")),
        ("vault:secret/a/b/c#k?version=3", SecretRef("vault", "secret/a/b/c", "k", "3")),
        ("aws-sm:tenants/acme#kubeconfig", SecretRef("aws-sm", "tenants/acme", "kubeconfig")),
        ("aws-sm:plain-secret", SecretRef("aws-sm", "plain-secret")),
        (
            "aws-sm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:acme-AbCdEf#token",
            SecretRef("aws-sm", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:acme-AbCdEf", "token"),
        ),
        ("aws-sm:acme#k?version=v-123", SecretRef("aws-sm", "acme", "k", "v-123")),
        ("env:KUBE_TOKEN", SecretRef("env", "KUBE_TOKEN")),
        ("file:kubeconfigs/a.yaml", SecretRef("file", "kubeconfigs/a.yaml")),
    ],
)
def test_parse_valid(text, expected):
    ref = parse_reference(text)
    got = (ref.scheme, ref.path, ref.key, ref.version)
    assert got == (expected.scheme, expected.path, expected.key, expected.version)
    assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vault:kv#key", "vault:<mount>/<path>#<key>"),
        ("vault:kv/path", "vault:<mount>/<path>#<key>"),
        ("vault:kv/path#", "vault:<mount>/<path>#<key>"),
        ("vault:kv/path#k?version=latest", "positive integer"),
        ("vault:kv/path#k?ver=2", "only option is ?version"),
        ("aws-sm:", "aws-sm:<name or ARN>"),
        ("aws-sm:name#", "aws-sm:<name or ARN>"),
        ("env:1BAD", "env:<VARIABLE_NAME>"),
        ("env:", "env:<VARIABLE_NAME>"),
        ("file:", "file:<path>"),
        ("s3:bucket/key", "not a secret reference"),
    ],
)
def test_parse_invalid(text, message):
    with pytest.raises(ReferenceSyntaxError, match=message.replace("?", r"\?").replace("(", r"\(")):
        parse_reference(text)


def test_vault_mount_and_path():
    ref = parse_reference("vault:kv/tenants/acme#kubeconfig")
    assert (ref.mount, ref.secret_path) == ("kv", "tenants/acme")


def test_file_is_relative_to_base_dir(tmp_path):
    assert parse_reference("file:a/b.yaml", tmp_path).file_path() == tmp_path / "a/b.yaml"
    assert parse_reference("file:/etc/x", tmp_path).file_path() == Path("/etc/x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("vault:x", True), ("aws-sm:x", True), ("env:X", True), ("file:x", True), ("https://x", False), ("token", False)],
)
def test_is_reference(text, expected):
    assert is_reference(text) is expected
