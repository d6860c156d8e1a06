"""The Vault steps (KV v2 on the inventory's ``secrets.vault`` connection): ``vault.read``,
``vault.write`` (check-and-set with ``cas``), ``vault.rotate`` (a new random value by a policy, written
as a new version) and ``vault.restore`` (a previous version's data written back as a new version).

A ``path`` is ``<mount>/<path in the mount>`` (``kv/apps/db``). Values are secrets: every value read or
written is registered for redaction (logs, reports, the journal show ``***``). Only ``vault.read``
outputs values (``data``); the writing steps output version numbers, so a rollback can restore.
"""

from __future__ import annotations

import secrets
import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from fleet.errors import InputError
from fleet.playbook.context import StepContext, StepResult
from fleet.secrets import SecretResolver
from fleet.secrets.vault_kv import KvVersion, VaultKv

#: The named character sets of ``vault.rotate``'s ``alphabet``.
ALPHABETS = {
    "alphanumeric": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "base64url": string.ascii_letters + string.digits + "-_",
    "printable": string.ascii_letters + string.digits + "!#$%&()*+,-./:;<=>?@[]^_{|}~",
}


class _VaultTask(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    path: str = Field(pattern=r"^[^/\s]+/\S+$", description="<mount>/<path>, e.g. kv/apps/db")


def _resolver(ctx: StepContext) -> SecretResolver:
    if ctx.resolver is None:
        raise InputError(f"step {ctx.step_id} needs Vault: this run has no secret stores configured")
    return ctx.resolver


class VaultReadTask(_VaultTask):
    """Read a version of a secret (the current one by default): ``data`` (key -> value), ``version``."""

    version: int | None = Field(default=None, ge=1)

    async def run(self, ctx: StepContext) -> StepResult:
        found = await _resolver(ctx).vault_kv(lambda kv: kv.read(self.path, self.version))
        return StepResult({"path": self.path, "version": found.version, "data": found.data})


class VaultWriteTask(_VaultTask):
    """Write ``data`` as a new version; ``cas``: only if the current version is that one (0: only if the
    secret does not exist yet)."""

    data: dict[str, str] = Field(min_length=1)
    cas: int | None = Field(default=None, ge=0)

    async def run(self, ctx: StepContext) -> StepResult:
        previous = await _resolver(ctx).vault_kv(lambda kv: kv.current_version(self.path))
        version = await _resolver(ctx).vault_kv(lambda kv: kv.write(self.path, dict(self.data), cas=self.cas))
        return StepResult({"path": self.path, "version": version, "previousVersion": previous})


class VaultRotateTask(_VaultTask):
    """A new random value for ``key`` (``length`` characters of ``alphabet``, or of ``characters``),
    written as a new version that keeps the secret's other keys; check-and-set against the version it
    read, so a concurrent writer is never overwritten. Outputs ``version`` and ``previousVersion``."""

    key: str = "password"
    length: int = Field(default=32, ge=8, le=4096)
    alphabet: Literal["alphanumeric", "hex", "base64url", "printable"] = "alphanumeric"
    characters: str | None = Field(default=None, description="the characters to draw from, instead of alphabet")

    @model_validator(mode="after")
    def _enough_characters(self) -> VaultRotateTask:
        if self.characters is not None and len(set(self.characters)) < 2:
            raise ValueError("characters needs at least two different characters")
        return self

    def new_value(self) -> str:
        pool = self.characters if self.characters is not None else ALPHABETS[self.alphabet]
        return "".join(secrets.choice(pool) for _ in range(self.length))

    async def run(self, ctx: StepContext) -> StepResult:
        def rotate(kv: VaultKv) -> tuple[int, int | None]:
            previous = kv.current_version(self.path)
            data = kv.read(self.path).data if previous is not None else {}
            return kv.write(self.path, {**data, self.key: self.new_value()}, cas=previous or 0), previous

        version, previous = await _resolver(ctx).vault_kv(rotate)
        return StepResult({"path": self.path, "key": self.key, "version": version, "previousVersion": previous})


class VaultRestoreTask(_VaultTask):
    """Write the data of ``version`` back as a new version (the history stays; check-and-set against the
    current version). Outputs ``version`` (the new one), ``restoredFrom`` and ``previousVersion``."""

    version: int = Field(ge=1)

    async def run(self, ctx: StepContext) -> StepResult:
        def restore(kv: VaultKv) -> tuple[int, KvVersion]:
            current = kv.read(self.path)
            old = kv.read(self.path, self.version)
            return kv.write(self.path, old.data, cas=current.version), current

        version, current = await _resolver(ctx).vault_kv(restore)
        return StepResult(
            {"path": self.path, "version": version, "restoredFrom": self.version, "previousVersion": current.version}
        )


VAULT_TASKS: dict[str, type[BaseModel]] = {
    "vault.read": VaultReadTask,
    "vault.write": VaultWriteTask,
    "vault.rotate": VaultRotateTask,
    "vault.restore": VaultRestoreTask,
}
#: Steps whose outputs hold secret values: the journal keeps them redacted, so a resumed run reads again.
SECRET_OUTPUTS = frozenset({"vault.read"})
