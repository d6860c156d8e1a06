"""Resolving references for a run: lazily, concurrently under a limit, each secret fetched once
(concurrent callers share the fetch), kept for the run, fetched again once its lease has ended."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import trio

from fleet.redaction import register_secret
from fleet.secrets.config import SecretsConfig
from fleet.secrets.errors import SecretError
from fleet.secrets.reference import ReferenceSyntaxError, SecretRef, parse_reference
from fleet.secrets.sources import AwsSecretsSource, Fetched, VaultSource, read_env, read_file
from fleet.secrets.vault_kv import VaultKv

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class _Entry:
    value: str | None
    error: SecretError | None
    expires_at: float | None


@dataclass(frozen=True)
class ResolverStatistics:
    """``fetches`` so far; references ``cached``; ``in_flight``: references being resolved, of which
    ``fetching`` are at a store right now (at most ``SecretsConfig.concurrency``) and the rest wait."""

    fetches: int
    cached: int
    in_flight: int
    fetching: int


class SecretResolver:
    """Resolves ``SecretRef``s against the configured stores. One per run (its cache lives as long)."""

    def __init__(
        self,
        config: SecretsConfig | None = None,
        *,
        base_dir: Path | None = None,
        default_vault_address: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or SecretsConfig()
        self.base_dir = base_dir
        self._vault = VaultSource(self.config.vault, default_address=default_vault_address, base_dir=base_dir)
        self._kv = VaultKv(self._vault)
        self._aws = AwsSecretsSource(self.config.aws)
        self._limiter = trio.CapacityLimiter(self.config.concurrency)
        self._clock = clock
        self._cache: dict[SecretRef, _Entry] = {}
        self._in_flight: dict[SecretRef, trio.Event] = {}
        self._fetches = 0

    def parse(self, text: str) -> SecretRef:
        try:
            return parse_reference(text, self.base_dir)
        except ReferenceSyntaxError as e:
            raise SecretError(text, str(e)) from None

    async def resolve(self, ref: SecretRef | str) -> str:
        """The value behind ``ref``, registered for redaction. Raises ``SecretError`` naming ``ref``."""
        if isinstance(ref, str):
            ref = self.parse(ref)
        while True:
            entry = self._cache.get(ref)
            if entry is not None and (entry.expires_at is None or entry.expires_at > self._clock()):
                if entry.error is not None:
                    raise entry.error
                assert entry.value is not None
                return entry.value
            waiting = self._in_flight.get(ref)
            if waiting is None:
                break
            await waiting.wait()
        done = self._in_flight[ref] = trio.Event()
        try:
            entry = await self._fetch(ref)
            self._cache[ref] = entry
        finally:
            del self._in_flight[ref]
            done.set()
        if entry.error is not None:
            raise entry.error
        assert entry.value is not None
        return entry.value

    async def _fetch(self, ref: SecretRef) -> _Entry:
        self._fetches += 1
        fetch: Callable[[SecretRef], Fetched]
        match ref.scheme:
            case "env":
                fetch = read_env
            case "file":
                fetch = read_file
            case "vault":
                fetch = self._vault.fetch
            case "aws-sm":
                fetch = self._aws.fetch
        try:
            fetched = await trio.to_thread.run_sync(partial(fetch, ref), limiter=self._limiter)
        except SecretError as e:
            log.warning("secret %s could not be resolved: %s", ref.text, e.problem)
            return _Entry(None, e, None)
        register_secret(fetched.value)
        expires = self._clock() + fetched.lease_seconds if fetched.lease_seconds else None
        log.debug("resolved secret %s%s", ref.text, f" (lease {fetched.lease_seconds:.0f}s)" if expires else "")
        return _Entry(fetched.value, None, expires)

    async def vault_kv(self, operation: Callable[[VaultKv], T]) -> T:
        """``operation`` on the KV v2 secrets of this run's Vault (the inventory's connection), in a worker
        thread under the same limit as the fetches."""
        return await trio.to_thread.run_sync(operation, self._kv, limiter=self._limiter)

    def forget(self) -> None:
        """Drop the cache: the next ``resolve`` of each reference fetches again."""
        self._cache.clear()

    def statistics(self) -> ResolverStatistics:
        return ResolverStatistics(
            self._fetches, len(self._cache), len(self._in_flight), self._limiter.statistics().borrowed_tokens
        )
