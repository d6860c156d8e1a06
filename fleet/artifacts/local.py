"""The default artifact store: a local directory (``FleetSettings.artifacts``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from fleet.artifacts.store import CHUNK, ArtifactRef, check_key
from fleet.errors import InputError

_META_SUFFIX = ".fleet-meta.json"


def sha256_of(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class LocalArtifactStore:
    """Files under ``root/<key>``, each with a small metadata file holding its size and sha256."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_file(self, key: str, source: Path) -> ArtifactRef:
        target = self.path_of(key)

        def put() -> ArtifactRef:
            target.parent.mkdir(parents=True, exist_ok=True)
            size, sha = sha256_of(source)
            partial = target.with_name(target.name + ".partial")
            shutil.move(source, partial)
            os.replace(partial, target)
            ref = ArtifactRef(key=key, size=size, sha256=sha)
            target.with_name(target.name + _META_SUFFIX).write_text(json.dumps({"size": size, "sha256": sha}))
            return ref

        return await trio.to_thread.run_sync(put)

    async def stat(self, key: str) -> ArtifactRef:
        target = self.path_of(key)

        def stat() -> ArtifactRef:
            if not target.is_file():
                raise InputError(f"artifact {key!r} does not exist in {self.root}")
            meta = target.with_name(target.name + _META_SUFFIX)
            if meta.is_file():
                data = json.loads(meta.read_text())
                if data.get("size") == target.stat().st_size:
                    return ArtifactRef(key=key, size=int(data["size"]), sha256=str(data["sha256"]))
            size, sha = sha256_of(target)
            return ArtifactRef(key=key, size=size, sha256=sha)

        return await trio.to_thread.run_sync(stat)

    async def read_chunks(self, key: str) -> AsyncIterator[bytes]:
        target = self.path_of(key)
        try:
            source = await trio.open_file(target, "rb")
        except FileNotFoundError as exc:
            raise InputError(f"artifact {key!r} does not exist in {self.root}") from exc
        async with source:
            while chunk := await source.read(CHUNK):
                yield chunk
