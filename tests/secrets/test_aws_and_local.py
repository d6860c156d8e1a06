"""Secrets from AWS Secrets Manager (a moto server), environment variables and files."""

import json

import boto3
import pytest

from fleet.secrets import SecretError, SecretResolver, SecretsConfig
from fleet.secrets.config import AwsSecretsConfig


def _sm(moto):
    return boto3.client("secretsmanager", endpoint_url=moto.endpoint, region_name="eu-west-1")


def _resolver(moto) -> SecretResolver:
    return SecretResolver(SecretsConfig(aws=AwsSecretsConfig(region="eu-west-1", endpoint_url=moto.endpoint)))


async def test_json_key_plain_arn_and_version(moto):
    sm = _sm(moto)
    created = sm.create_secret(Name="tenants/acme", SecretString=json.dumps({"token": "acme-token-1"}))
    second = sm.put_secret_value(SecretId="tenants/acme", SecretString=json.dumps({"token": "acme-token-2"}))
    sm.create_secret(Name="plain", SecretString="plain-secret-value")
    resolver = _resolver(moto)
    assert await resolver.resolve("aws-sm:tenants/acme#token") == "acme-token-2"
    assert await resolver.resolve(f"aws-sm:{created['ARN']}#token") == "acme-token-2"
    assert await resolver.resolve(f"aws-sm:tenants/acme#token?version={created['VersionId']}") == "acme-token-1"
    assert second["VersionId"] != created["VersionId"]
    assert await resolver.resolve("aws-sm:plain") == "plain-secret-value"


async def test_missing_secret_and_non_json(moto):
    _sm(moto).create_secret(Name="plain", SecretString="plain-secret-value")
    resolver = _resolver(moto)
    with pytest.raises(SecretError, match="aws-sm:nope#k: not found in AWS Secrets Manager"):
        await resolver.resolve("aws-sm:nope#k")
    with pytest.raises(SecretError) as caught:
        await resolver.resolve("aws-sm:plain#k")
    assert "not JSON" in str(caught.value)
    assert "plain-secret-value" not in str(caught.value)


async def test_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FLEET_TEST_SECRET", "from-the-environment")
    monkeypatch.delenv("FLEET_TEST_UNSET", raising=False)
    (tmp_path / "token.txt").write_text("from-a-file\n")
    (tmp_path / "two-lines.txt").write_text("line one\nline two\n\n")
    resolver = SecretResolver(base_dir=tmp_path)
    assert await resolver.resolve("env:FLEET_TEST_SECRET") == "from-the-environment"
    assert await resolver.resolve("file:token.txt") == "from-a-file"  # without the final line break ...
    assert await resolver.resolve("file:two-lines.txt") == "line one\nline two\n"  # ... and only that one
    with pytest.raises(SecretError, match="env:FLEET_TEST_UNSET: the environment variable FLEET_TEST_UNSET is not set"):
        await resolver.resolve("env:FLEET_TEST_UNSET")
    with pytest.raises(SecretError, match=r"file:missing\.txt: cannot read"):
        await resolver.resolve("file:missing.txt")


async def test_bad_reference_is_a_secret_error():
    with pytest.raises(SecretError, match=r"vault:nokey: .*expected vault:<mount>/<path>#<key>"):
        await SecretResolver().resolve("vault:nokey")
