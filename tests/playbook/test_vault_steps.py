"""The ``vault.*`` steps against a real OpenBao dev server: read, write with check-and-set, rotate by a
policy (a new version, the previous one kept), restore a previous version; values never in messages."""

from __future__ import annotations

import secrets as pysecrets
import string
from pathlib import Path
from typing import Any

import pytest

from fleet.artifacts import LocalArtifactStore
from fleet.errors import InputError
from fleet.playbook.context import StepContext, StepResult
from fleet.playbook.steps import OPTIONS
from fleet.redaction import REGISTRY
from fleet.secrets import SecretError, SecretResolver, SecretsConfig
from fleet.secrets.config import VaultConfig


def _path() -> str:
    return f"secret/rotate-{pysecrets.token_hex(4)}/db"


@pytest.fixture
def ctx(openbao, monkeypatch, tmp_path: Path) -> StepContext:
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    resolver = SecretResolver(SecretsConfig(vault=VaultConfig(address=openbao.address)))
    return StepContext("run-1", "(run)", "rotate", None, LocalArtifactStore(tmp_path), resolver=resolver)


async def _run(ctx: StepContext, step_type: str, **options: Any) -> StepResult:
    task = OPTIONS[step_type].model_validate(options)
    result: StepResult = await task.run(ctx)  # type: ignore[attr-defined]
    return result


async def test_write_read_rotate_restore(ctx, openbao):
    path = _path()
    mount, inner = path.split("/", 1)
    written = await _run(ctx, "vault.write", path=path, data={"user": "app", "password": "first-password-1"}, cas=0)
    assert written.outputs == {"path": path, "version": 1, "previousVersion": None}

    rotated = await _run(ctx, "vault.rotate", path=path, key="password", length=40, alphabet="hex")
    assert rotated.outputs == {"path": path, "key": "password", "version": 2, "previousVersion": 1}
    assert "first-password-1" not in str(rotated.outputs)
    current = openbao.client().secrets.kv.v2.read_secret_version(
        path=inner, mount_point=mount, raise_on_deleted_version=True
    )["data"]["data"]
    assert current["user"] == "app"  # the other keys are kept
    assert len(current["password"]) == 40
    assert set(current["password"]) <= set(string.hexdigits.lower())
    assert current["password"] in REGISTRY.values()  # a new value is a secret before it is written

    read = await _run(ctx, "vault.read", path=path, version=2)
    assert read.outputs["data"] == current
    assert read.outputs["version"] == 2

    restored = await _run(ctx, "vault.restore", path=path, version=1)
    assert restored.outputs == {"path": path, "version": 3, "restoredFrom": 1, "previousVersion": 2}
    latest = await _run(ctx, "vault.read", path=path)
    assert latest.outputs["version"] == 3
    assert latest.outputs["data"]["password"] == "first-password-1"


async def test_check_and_set_refuses_a_stale_version(ctx):
    path = _path()
    await _run(ctx, "vault.write", path=path, data={"password": "cas-password-1"})
    await _run(ctx, "vault.write", path=path, data={"password": "cas-password-2"}, cas=1)
    with pytest.raises(SecretError) as caught:
        await _run(ctx, "vault.write", path=path, data={"password": "cas-password-3"}, cas=1)
    assert f"secret vault:{path}: check-and-set refused the write" in str(caught.value)
    assert "cas-password" not in str(caught.value)
    with pytest.raises(SecretError, match="check-and-set refused"):
        await _run(ctx, "vault.write", path=path, data={"password": "cas-password-4"}, cas=0)


async def test_rotate_creates_a_missing_secret_and_custom_characters(ctx):
    path = _path()
    rotated = await _run(ctx, "vault.rotate", path=path, key="token", length=12, characters="ab")
    assert rotated.outputs["version"] == 1
    assert rotated.outputs["previousVersion"] is None
    read = await _run(ctx, "vault.read", path=path)
    assert set(read.outputs["data"]["token"]) <= {"a", "b"}
    assert len(read.outputs["data"]["token"]) == 12


async def test_errors_name_the_path(ctx):
    with pytest.raises(SecretError, match=r"secret vault:secret/absent-\w+/x: not found in Vault"):
        await _run(ctx, "vault.read", path=f"secret/absent-{pysecrets.token_hex(3)}/x")
    path = _path()
    await _run(ctx, "vault.write", path=path, data={"password": "restore-password-1"})
    with pytest.raises(SecretError, match="not found in Vault"):
        await _run(ctx, "vault.restore", path=path, version=7)


async def test_kv1_mounts_are_refused(ctx, openbao):
    mount = f"kv1-{pysecrets.token_hex(3)}"
    openbao.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    with pytest.raises(SecretError, match=f"mount '{mount}' is KV v1"):
        await _run(ctx, "vault.rotate", path=f"{mount}/db")


def test_policy_options_are_checked():
    rotate = OPTIONS["vault.rotate"]
    for bad in ({"path": "kv/db", "length": 4}, {"path": "kv/db", "alphabet": "emoji"}, {"path": "nomount"}):
        with pytest.raises(ValueError, match="validation error"):
            rotate.model_validate(bad)
    with pytest.raises(ValueError, match="at least two different characters"):
        rotate.model_validate({"path": "kv/db", "characters": "aaaa"})


async def test_without_a_resolver_the_step_says_so(tmp_path):
    ctx = StepContext("run-1", "(run)", "read", None, LocalArtifactStore(tmp_path))
    with pytest.raises(InputError, match="step read needs Vault"):
        await _run(ctx, "vault.read", path="kv/db")
