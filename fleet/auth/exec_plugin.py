"""kubeconfig ``exec`` credential plugins (client.authentication.k8s.io), run by fleet itself so that a
token is refreshed when its ``expirationTimestamp`` nears and after a 401, also for plugins that
report no expiry (the official client would keep such a token forever)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from fleet.auth.errors import AuthError
from fleet.auth.provider import RefreshingTokenProvider, Token

PLUGIN_TIMEOUT = 60.0
DEFAULT_API_VERSION = "client.authentication.k8s.io/v1"


class ExecTokenProvider(RefreshingTokenProvider):
    """Runs the ``exec`` section of a kubeconfig user and returns ``status.token``.

    ``max_age`` bounds how long a token without ``expirationTimestamp`` is kept.
    """

    kind = "exec"

    def __init__(
        self,
        spec: Mapping[str, Any],
        *,
        cluster: Mapping[str, Any] | None = None,
        base_dir: Path | None = None,
        max_age: float = 300.0,
        refresh_ahead: float = 30.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        kwargs = {"clock": clock} if clock is not None else {}
        super().__init__(refresh_ahead=refresh_ahead, **kwargs)
        command = spec.get("command")
        if not isinstance(command, str) or not command:
            raise AuthError("exec credential plugin: the kubeconfig user's exec section has no command")
        self.command = command
        self.args = [str(a) for a in spec.get("args") or []]
        self.env = {str(e["name"]): str(e["value"]) for e in spec.get("env") or [] if "name" in e}
        self.api_version = str(spec.get("apiVersion") or DEFAULT_API_VERSION)
        self.cluster_info = dict(cluster) if spec.get("provideClusterInfo") and cluster else None
        self.base_dir = base_dir
        self.max_age = max_age

    def _exec_info(self) -> str:
        spec: dict[str, Any] = {"interactive": False}
        if self.cluster_info is not None:
            spec["cluster"] = self.cluster_info
        return json.dumps({"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec})

    def _mint(self) -> Token:
        started = self._clock()
        # kubectl resolves a relative command path against the kubeconfig's directory.
        command = self.command
        if self.base_dir is not None and ("/" in command and not command.startswith("/")):
            command = str(self.base_dir / command)
        try:
            done = subprocess.run(
                [command, *self.args],
                capture_output=True,
                text=True,
                timeout=PLUGIN_TIMEOUT,
                env={**os.environ, **self.env, "KUBERNETES_EXEC_INFO": self._exec_info()},
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AuthError(f"exec credential plugin {self.command!r} could not run: {e}") from None
        if done.returncode != 0:
            raise AuthError(f"exec credential plugin {self.command!r} exited with code {done.returncode}")
        try:
            status = json.loads(done.stdout)["status"]
            value = str(status["token"])
        except (ValueError, KeyError, TypeError):
            raise AuthError(
                f"exec credential plugin {self.command!r} printed no ExecCredential with status.token "
                "(client certificates from plugins are not supported)"
            ) from None
        expiry = status.get("expirationTimestamp")
        if expiry:
            try:
                expires_at = datetime.fromisoformat(str(expiry).replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise AuthError(f"exec credential plugin {self.command!r}: bad expirationTimestamp") from None
        else:
            expires_at = started + self.max_age
        return Token(value, expires_at)
