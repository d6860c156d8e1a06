"""A bearer token read from a file and read again as it rotates: the projected service account token
of a pod (``inCluster``), which the kubelet renews behind the process's back."""

from __future__ import annotations

from pathlib import Path

from fleet.auth.errors import AuthError
from fleet.auth.provider import RefreshingTokenProvider, Token


class FileTokenProvider(RefreshingTokenProvider):
    """A token re-read from ``path`` every ``reread_every`` seconds, and at once after an ``invalidate``."""

    kind = "file"

    def __init__(self, path: Path, *, reread_every: float = 60.0) -> None:
        super().__init__(refresh_ahead=0.0)
        self.path = path
        self.reread_every = reread_every

    def _mint(self) -> Token:
        try:
            value = self.path.read_text().strip()
        except OSError as e:
            raise AuthError(f"cannot read the token file {self.path}: {e.strerror or e}") from None
        return Token(value, self._clock() + self.reread_every)
