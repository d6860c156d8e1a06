"""Versioned reads and writes of Vault/OpenBao KV v2 secrets, on the inventory's Vault connection
(``VaultSource``: its address, namespace, auth and re-login), for the ``vault.*`` playbook steps.

A path is ``<mount>/<path in the mount>`` (``kv/apps/db``), as in a ``vault:`` reference. Every value
read or written is registered for redaction before it can reach a log, an output or the journal. The
calls block: run them in a worker thread (``SecretResolver.vault_kv``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleet.redaction import register_secret
from fleet.secrets.errors import SecretError
from fleet.secrets.sources import VaultSource

if TYPE_CHECKING:
    import hvac


@dataclass(frozen=True)
class KvVersion:
    """One version of a secret: its data (key -> value) and its version number."""

    data: dict[str, Any]
    version: int


def _split(path: str) -> tuple[str, str]:
    mount, _, inner = path.strip("/").partition("/")
    if not mount or not inner:
        raise SecretError(f"vault:{path}", "expected a path <mount>/<path>, e.g. kv/apps/db")
    return mount, inner


def _register(data: dict[str, Any]) -> None:
    for value in data.values():
        register_secret(value if isinstance(value, str) else str(value))


class VaultKv:
    """KV v2 operations on ``source``'s connection; errors are ``SecretError``s naming the path."""

    def __init__(self, source: VaultSource) -> None:
        self.source = source

    def _v2(self, client: hvac.Client, path: str) -> tuple[str, str]:
        mount, inner = _split(path)
        if self.source.kv_version(client, mount) != 2:
            raise SecretError(f"vault:{path}", f"mount {mount!r} is KV v1: versions and check-and-set need KV v2")
        return mount, inner

    def read(self, path: str, version: int | None = None) -> KvVersion:
        """``version`` of the secret at ``path`` (the current one if None)."""

        def read(client: hvac.Client) -> KvVersion:
            mount, inner = self._v2(client, path)
            response = client.secrets.kv.v2.read_secret_version(
                path=inner, version=version, mount_point=mount, raise_on_deleted_version=True
            )
            data = dict(response["data"]["data"] or {})
            _register(data)
            return KvVersion(data, int(response["data"]["metadata"]["version"]))

        return self.source.call(f"vault:{path}", read)

    def current_version(self, path: str) -> int | None:
        """The secret's current version number; None when there is no secret at ``path`` yet."""

        def current(client: hvac.Client) -> int | None:
            mount, inner = self._v2(client, path)
            import hvac.exceptions

            try:
                response = client.secrets.kv.v2.read_secret_metadata(path=inner, mount_point=mount)
            except hvac.exceptions.InvalidPath:
                return None
            return int(response["data"]["current_version"]) or None

        return self.source.call(f"vault:{path}", current)

    def write(self, path: str, data: dict[str, Any], *, cas: int | None = None) -> int:
        """Write ``data`` as a new version; with ``cas`` only if the current version is ``cas`` (0: only if
        there is none). Returns the new version number."""
        _register(data)

        def write(client: hvac.Client) -> int:
            mount, inner = self._v2(client, path)
            response = client.secrets.kv.v2.create_or_update_secret(path=inner, secret=data, cas=cas, mount_point=mount)
            return int(response["data"]["version"])

        return self.source.call(f"vault:{path}", write)
