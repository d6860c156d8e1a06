"""Certificate material on disk for the TLS layer, private to one client.

urllib3 (and the exec WebSocket) read a CA, client certificate and key only from files. ``KeyFiles``
writes them 0600 into its own 0700 directory, created on the first write; ``remove`` deletes the
directory, and so does garbage collection or interpreter exit if nobody called it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path


class KeyFiles:
    """The private directory of one client's certificate files (created on first write)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.directory: Path | None = None
        self._finalizer: weakref.finalize[[str, bool], KeyFiles] | None = None

    def write(self, name: str, content: bytes) -> Path:
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix=f"fleet-{self.label}-"))  # 0700
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.directory), True)
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        return path

    def remove(self) -> None:
        """Delete the files (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()
