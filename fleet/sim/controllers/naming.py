"""Names and hashes as the Kubernetes controllers make them (pod-template-hash, random pod suffixes)."""

from __future__ import annotations

import json
import random
from typing import Any

# Kubernetes' rand.SafeEncodeString alphabet: no vowels (no words), no easily confused characters.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv32a(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in text)


def template_hash(template: Any, collision_count: int = 0) -> str:
    """A stable short hash of a pod template, spelled like Kubernetes' ``ComputeHash`` (e.g. ``78449c65d4``)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def random_suffix(length: int = 5) -> str:
    """The random part of a generated name (``web-7d4b9c-x2k9z``)."""
    return "".join(random.choices(_SAFE, k=length))


def generated_name(prefix: str, length: int = 5) -> str:
    """``prefix-xxxxx`` within the 63-character name limit, as the API server's generateName does."""
    return f"{prefix[: 63 - length - 1]}-{random_suffix(length)}"
