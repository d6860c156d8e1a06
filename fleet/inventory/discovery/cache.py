"""The discovery cache: one JSON file per source (private: 0600 in a 0700 directory), fresh for the
source's ``cache`` duration, bypassed by ``refresh``."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from pydantic import ValidationError

from fleet.inventory.models import Cluster

DEFAULT_CACHE_DIR = Path(".fleet/cache/inventory")


class DiscoveryCache:
    def __init__(self, directory: Path = DEFAULT_CACHE_DIR) -> None:
        self.directory = directory

    @staticmethod
    def key(source_json: str, base_dir: Path) -> str:
        return hashlib.sha256(f"{base_dir}\n{source_json}".encode()).hexdigest()[:32]

    def load(self, key: str, max_age: float, base_dir: Path) -> list[Cluster] | None:
        path = self.directory / f"{key}.json"
        try:
            data = json.loads(path.read_text())
            if time.time() - float(data["fetched_at"]) > max_age:
                return None
            return [Cluster.model_validate({**c, "base_dir": base_dir}) for c in data["clusters"]]
        except (OSError, ValueError, KeyError, TypeError, ValidationError):
            return None

    def store(self, key: str, clusters: list[Cluster]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = json.dumps({
            "fetched_at": time.time(),
            "clusters": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in clusters],
        })
        tmp = self.directory / f".{key}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(payload)
        tmp.replace(self.directory / f"{key}.json")
