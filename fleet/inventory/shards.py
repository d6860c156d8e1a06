"""``--shard I/N``: a stable, balanced share of the selected clusters for one of N processes.

Rendezvous (highest random weight) hashing on the cluster's name: each cluster goes to the shard whose
hash of (shard, name) is highest. Every process computes the same owner without talking to the others;
adding or removing a cluster moves no other cluster, and going from N to N+1 shards moves about 1/(N+1)
of them. Shards are numbered from 0, as a Kubernetes Indexed Job's ``JOB_COMPLETION_INDEX``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from fleet.errors import InputError

T = TypeVar("T")
_FORM = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str, *, flag: str = "--shard") -> Shard:
        match = _FORM.match(text)
        if match is None:
            raise InputError(f"{flag} {text!r}: expected I/N, the shard I of N counted from 0 (e.g. 0/3)")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or index >= count:
            raise InputError(f"{flag} {text!r}: I must be at least 0 and below N (N ≥ 1), e.g. 0/{max(count, 1)}")
        return cls(index, count)

    def owns(self, name: str) -> bool:
        return owner(name, self.count) == self.index

    def select(self, items: Sequence[T], name: Callable[[T], str]) -> list[T]:
        """The items this shard owns, in their order."""
        return [item for item in items if self.owns(name(item))]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def owner(name: str, count: int) -> int:
    """The shard (0 … count-1) that owns the cluster called ``name``."""
    return max(range(count), key=lambda shard: _weight(shard, name))


def _weight(shard: int, name: str) -> int:
    digest = hashlib.blake2b(f"{shard}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
