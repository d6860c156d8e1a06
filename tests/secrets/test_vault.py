"""Secrets from a real OpenBao dev server (KV v1 and v2, versions, token / AppRole auth, namespaces)."""

import secrets as pysecrets

import pytest
import trio

from fleet.inventory import load_inventory, secret_resolver
from fleet.secrets import SecretError, SecretResolver, SecretsConfig
from fleet.secrets.config import AppRoleAuth, TokenAuth, VaultConfig


def _unique(prefix: str) -> str:
    return f"{prefix}-{pysecrets.token_hex(4)}"


def _resolver(openbao, monkeypatch, **vault) -> SecretResolver:
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    return SecretResolver(SecretsConfig(vault=VaultConfig(address=openbao.address, **vault)))


async def test_kv2_latest_and_specific_version(openbao, monkeypatch):
    client = openbao.client()
    path = _unique("tenants/acme")
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"token": "first-value-1"}, mount_point="secret")
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"token": "second-value-2"}, mount_point="secret")
    resolver = _resolver(openbao, monkeypatch)
    assert await resolver.resolve(f"vault:secret/{path}#token") == "second-value-2"
    assert await resolver.resolve(f"vault:secret/{path}#token?version=1") == "first-value-1"


async def test_kv1_mount_detected(openbao, monkeypatch):
    client = openbao.client()
    mount = _unique("kv1")
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    client.secrets.kv.v1.create_or_update_secret(path="acme", secret={"password": "kv1-password"}, mount_point=mount)
    resolver = _resolver(openbao, monkeypatch)
    assert await resolver.resolve(f"vault:{mount}/acme#password") == "kv1-password"
    with pytest.raises(SecretError, match="KV v1, which has no versions"):
        await resolver.resolve(f"vault:{mount}/acme#password?version=2")


async def test_missing_secret_and_key_name_the_reference_not_values(openbao, monkeypatch):
    client = openbao.client()
    path = _unique("present")
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"a": "value-of-a-123"}, mount_point="secret")
    resolver = _resolver(openbao, monkeypatch)
    with pytest.raises(SecretError, match=r"secret vault:secret/absent/x#k: not found in Vault"):
        await resolver.resolve("vault:secret/absent/x#k")
    with pytest.raises(SecretError) as caught:
        await resolver.resolve(f"vault:secret/{path}#b")
    assert "no key 'b' (its keys: a)" in str(caught.value)
    assert "value-of-a-123" not in str(caught.value)


READ_SECRETS = (
    'path "secret/data/*" { capabilities = ["read"] }\n'
    'path "sys/internal/ui/mounts/*" { capabilities = ["read"] }'
)


def _approle(client, **role_options) -> AppRoleAuth:
    """A new AppRole mount with a role that may read ``secret/``; its role id and a secret id."""
    mount = _unique("approle")
    client.sys.enable_auth_method("approle", path=mount)
    client.sys.create_or_update_policy(name="fleet-read", policy=READ_SECRETS)
    client.auth.approle.create_or_update_approle("fleet", token_policies=["fleet-read"], mount_point=mount,
                                                 **role_options)
    role_id = client.auth.approle.read_role_id("fleet", mount_point=mount)["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("fleet", mount_point=mount)["data"]["secret_id"]
    return AppRoleAuth(method="approle", role_id=role_id, secret_id=secret_id, mount=mount)


async def test_approle_login(openbao):
    client = openbao.client()
    auth = _approle(client)
    path = _unique("approle-test")
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"k": "approle-read-value"}, mount_point="secret")
    resolver = SecretResolver(SecretsConfig(vault=VaultConfig(address=openbao.address, auth=auth)))
    assert await resolver.resolve(f"vault:secret/{path}#k") == "approle-read-value"


async def test_bad_token_is_permission_denied(openbao, monkeypatch):
    monkeypatch.setenv("WRONG_TOKEN", "not-a-valid-token")
    config = VaultConfig(address=openbao.address, auth=TokenAuth(token="env:WRONG_TOKEN"), kv_versions={"secret": 2})
    resolver = SecretResolver(SecretsConfig(vault=config))
    with pytest.raises(SecretError, match="permission denied by Vault"):
        await resolver.resolve("vault:secret/anything#k")


async def test_namespaces(openbao, monkeypatch):
    client = openbao.client()
    namespace = _unique("tenant")
    client.sys.create_namespace(path=namespace)
    inside = openbao.client(namespace=namespace)
    inside.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
    inside.secrets.kv.v2.create_or_update_secret(path="acme", secret={"k": "namespaced-value"}, mount_point="kv")
    resolver = _resolver(openbao, monkeypatch, namespace=namespace)
    assert await resolver.resolve("vault:kv/acme#k") == "namespaced-value"
    outside = _resolver(openbao, monkeypatch)
    with pytest.raises(SecretError):
        await outside.resolve("vault:kv/acme#k")


async def test_concurrent_resolves_share_one_fetch(openbao, monkeypatch):
    client = openbao.client()
    path = _unique("shared")
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"k": "shared-value"}, mount_point="secret")
    resolver = _resolver(openbao, monkeypatch)
    results = []

    async def one():
        results.append(await resolver.resolve(f"vault:secret/{path}#k"))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)
    assert results == ["shared-value"] * 20
    assert resolver.statistics().fetches == 1


async def test_lease_end_fetches_again(openbao, monkeypatch):
    client = openbao.client()
    mount = _unique("kv1lease")
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    client.secrets.kv.v1.create_or_update_secret(path="x", secret={"k": "before-rotation", "ttl": "30s"},
                                                  mount_point=mount)
    now = [1000.0]
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    resolver = SecretResolver(SecretsConfig(vault=VaultConfig(address=openbao.address)), clock=lambda: now[0])
    assert await resolver.resolve(f"vault:{mount}/x#k") == "before-rotation"
    client.secrets.kv.v1.create_or_update_secret(path="x", secret={"k": "after-rotation", "ttl": "30s"},
                                                  mount_point=mount)
    now[0] += 10
    assert await resolver.resolve(f"vault:{mount}/x#k") == "before-rotation"
    now[0] += 25
    assert await resolver.resolve(f"vault:{mount}/x#k") == "after-rotation"


async def test_fleet_vault_addr_is_the_default_address(openbao, monkeypatch, tmp_path):
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path="settings/default-addr", secret={"k": "from-fleet-vault-addr"}, mount_point="secret"
    )
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")  # FLEET_VAULT_ADDR wins over VAULT_ADDR ...
    monkeypatch.setenv("FLEET_VAULT_ADDR", openbao.address)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("clusters:\n  - name: a\n    connection: {inCluster: true}\n")
    resolver = secret_resolver(load_inventory([inventory]))
    assert await resolver.resolve("vault:secret/settings/default-addr#k") == "from-fleet-vault-addr"
    # ... and the inventory's own secrets.vault.address wins over both.
    inventory.write_text('secrets:\n  vault: {address: "http://127.0.0.1:9"}\n' + inventory.read_text())
    with pytest.raises(SecretError, match=r"Vault at http://127\.0\.0\.1:9 is unreachable"):
        await secret_resolver(load_inventory([inventory])).resolve("vault:secret/settings/default-addr#k")


async def test_an_approle_token_used_up_is_replaced_by_a_new_login(openbao):
    client = openbao.client()
    # Each login's token serves one request: the second read finds it gone (403) and logs in again.
    auth = _approle(client, token_num_uses=1)
    paths = [_unique("once-a"), _unique("once-b")]
    for path in paths:
        client.secrets.kv.v2.create_or_update_secret(path=path, secret={"k": f"value-of-{path}"}, mount_point="secret")
    config = VaultConfig(address=openbao.address, auth=auth, kv_versions={"secret": 2})
    resolver = SecretResolver(SecretsConfig(vault=config))
    for path in paths:
        assert await resolver.resolve(f"vault:secret/{path}#k") == f"value-of-{path}"
