"""Memory limits through the cgroup v1 memory controller, when this machine lets the sim use it.

A container with ``resources.limits.memory`` runs in its own cgroup with that limit; when the kernel's
OOM killer ends it there, the container reports ``OOMKilled``. Without a writable memory controller the
limit is not enforced (and ``available()`` says so).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
SIM_GROUP = "fleet-sim"
# Joins the cgroup, then becomes the container's command: the limit holds from its first instruction.
_JOIN = 'echo $$ > "$0" && exec "$@"'


def available() -> bool:
    """Whether memory limits can be enforced here (cgroup v1 memory controller, writable)."""
    base = MEMORY_ROOT / SIM_GROUP
    try:
        base.mkdir(exist_ok=True)
    except OSError:
        return False
    return (base / "memory.limit_in_bytes").exists()


class MemoryCgroup:
    """One container run's memory cgroup."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, name: str, limit_bytes: int) -> MemoryCgroup | None:
        """A cgroup limited to ``limit_bytes``; None where cgroups cannot be used."""
        if not available():
            return None
        path = MEMORY_ROOT / SIM_GROUP / name
        try:
            path.mkdir(exist_ok=True)
            (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started inside this cgroup."""
        return ["/bin/sh", "-c", _JOIN, str(self.path / "cgroup.procs"), *argv]

    def oom_killed(self) -> bool:
        try:
            text = (self.path / "memory.oom_control").read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(counts.get("oom_kill", "0")) > 0

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()
