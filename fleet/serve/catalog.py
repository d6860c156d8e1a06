"""The playbooks ``fleet serve`` runs: every ``*.yaml``/``*.yml`` file directly in ``--playbooks DIR``,
loaded and validated when the server starts and found by the ``id`` they declare. A file that is not a
valid playbook, or two files with one id, stop the server from starting (exit 2, naming the file): a
playbook must never be silently missing. Restart the server to serve changed files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleet.errors import InputError, Location
from fleet.playbook.loader import LoadedPlaybook, load_playbook

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Catalog:
    directory: Path
    by_id: dict[str, LoadedPlaybook]

    def get(self, playbook_id: str) -> LoadedPlaybook | None:
        return self.by_id.get(playbook_id)


def load_catalog(directory: Path, *, installation_defaults: Path | None = None) -> Catalog:
    by_id: dict[str, LoadedPlaybook] = {}
    for file in sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file()):
        loaded = load_playbook(file, installation_defaults=installation_defaults)
        other = by_id.get(loaded.playbook.id)
        if other is not None:
            raise InputError(
                f"playbook id {loaded.playbook.id!r} is also the id of {other.file}: each served playbook "
                "needs its own id",
                location=Location(file=str(file), field="id"),
            )
        by_id[loaded.playbook.id] = loaded
    if not by_id:
        raise InputError(f"--playbooks {directory}: no playbook (*.yaml, *.yml) in that directory")
    return Catalog(directory, by_id)
