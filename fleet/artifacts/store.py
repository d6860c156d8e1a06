"""The ``ArtifactStore`` interface and what it hands out: ``ArtifactRef``, a reference later steps can use
as an input file (``artifact://<key>``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from fleet.errors import FleetError, InputError

SCHEME = "artifact://"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArtifactRef:
    """A stored file: its key, size in bytes and sha256; ``uri`` is what steps pass around."""

    key: str
    size: int
    sha256: str

    @property
    def uri(self) -> str:
        return SCHEME + self.key

    def as_output(self) -> dict[str, str | int]:
        return {"uri": self.uri, "size": self.size, "sha256": self.sha256}


class ArtifactError(FleetError):
    """The artifact store could not store or read a file (the message names the store and the cause)."""


def key_from_uri(uri: str) -> str:
    """The key of an ``artifact://`` reference; anything else is an ``InputError``."""
    if not uri.startswith(SCHEME) or len(uri) == len(SCHEME):
        raise InputError(f"{uri!r} is not an artifact reference (expected {SCHEME}<key>)")
    return check_key(uri[len(SCHEME) :])


def check_key(key: str) -> str:
    """A key is a relative path without ``..``, empty parts or NUL characters."""
    parts = key.split("/")
    if key.startswith("/") or "\0" in key or any(part in {"", ".", ".."} for part in parts):
        raise InputError(f"{key!r} is not a valid artifact key (a relative path without '..' or empty parts)")
    return key


def artifact_key(*parts: str) -> str:
    """A key from parts (run, cluster, step, attempt) and a relative file path as the last part."""
    *prefix, path = parts
    return check_key("/".join([*(quote(p, safe="") for p in prefix), path]))


class ArtifactStore(Protocol):
    """Where step files are kept. Every method may block on I/O, so every method is async."""

    async def put_file(self, key: str, source: Path) -> ArtifactRef:
        """Store the file at ``source`` under ``key`` (the source may be moved or removed)."""
        ...

    async def stat(self, key: str) -> ArtifactRef:
        """The reference of a stored key; ``InputError`` when there is none."""
        ...

    def read_chunks(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes in chunks."""
        ...
