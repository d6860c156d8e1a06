"""What ``fleet serve`` is given (``ServeConfig``) and the secrets it resolves from it when it starts
(``ServeSecrets``: the bearer token and the HMAC key, from secret references, registered for redaction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fleet.errors import InputError, Location
from fleet.secrets import SecretError, SecretResolver

Launcher = Literal["local", "job"]

#: The largest request body read (``--max-body``); a larger one is refused while it is read (413).
DEFAULT_MAX_BODY = 1024 * 1024
#: How far the signed ``X-Fleet-Timestamp`` may be from the server's clock, either way, in seconds.
DEFAULT_REPLAY_WINDOW = 300.0
#: Local runs at once (``--max-runs``).
DEFAULT_MAX_RUNS = 4


@dataclass(frozen=True)
class JobConfig:
    """``--launcher job``: where the Jobs go and what they are made from.

    ``template`` is a Job manifest (``deploy/kustomize/base/serve/run-job.yaml``) whose first container
    runs ``fleet run``; ``kubeconfig`` (and ``context``) name the cluster, else the pod's own service
    account (in-cluster)."""

    template: Path
    namespace: str = "fleet"
    kubeconfig: Path | None = None
    context: str | None = None


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``build_app`` needs. ``app.state.config`` carries it for every route."""

    playbooks: Path
    inventory: tuple[Path, ...]
    journal: Path
    artifacts: Path
    launcher: Launcher = "local"
    token_ref: str | None = None
    hmac_secret_ref: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    replay_window: float = DEFAULT_REPLAY_WINDOW
    max_runs: int = DEFAULT_MAX_RUNS
    job: JobConfig | None = None
    #: ``FLEET_DEFAULTS``: the installation's step defaults, merged into every served playbook.
    installation_defaults: Path | None = None

    def check(self) -> None:
        """Refuse a configuration that cannot serve safely (exit 2 from the CLI, before anything listens)."""
        if self.token_ref is None and self.hmac_secret_ref is None:
            raise InputError(
                "fleet serve needs --token-ref REF and/or --hmac-secret-ref REF (env:VAR, file:PATH, vault:…): "
                "it never serves without authentication",
                location=Location(field="--token-ref"),
            )
        if not self.playbooks.is_dir():
            raise InputError(f"--playbooks {self.playbooks}: not a directory", location=Location(field="--playbooks"))
        if not self.inventory:
            raise InputError("fleet serve needs -i INVENTORY (the clusters its runs may target)")
        if self.max_body < 1:
            raise InputError(f"--max-body must be at least 1 byte, not {self.max_body}")
        if self.max_runs < 1:
            raise InputError(f"--max-runs must be at least 1, not {self.max_runs}")
        if self.launcher == "job" and self.job is None:
            raise InputError("--launcher job needs --job-template FILE (deploy/kustomize/base/serve/run-job.yaml)")


@dataclass(frozen=True)
class ServeSecrets:
    """The resolved credentials requests are checked against (never in a repr, a log or an answer)."""

    token: str | None = field(default=None, repr=False)
    hmac_key: bytes | None = field(default=None, repr=False)


async def resolve_secrets(config: ServeConfig) -> ServeSecrets:
    """The token and HMAC key behind ``config``'s references, each registered for redaction (a relative
    ``file:`` is relative to the working directory). A reference that cannot be resolved is an input
    error naming its flag: the server does not start."""
    resolver = SecretResolver(base_dir=Path.cwd())
    values: dict[str, str | None] = {}
    for flag, ref in (("--token-ref", config.token_ref), ("--hmac-secret-ref", config.hmac_secret_ref)):
        if ref is None:
            values[flag] = None
            continue
        try:
            value = await resolver.resolve(ref)
        except SecretError as e:
            raise InputError(str(e), location=Location(field=flag)) from None
        if not value.strip():
            raise InputError(f"the secret {ref} is empty", location=Location(field=flag))
        values[flag] = value
    key = values["--hmac-secret-ref"]
    return ServeSecrets(token=values["--token-ref"], hmac_key=key.encode() if key is not None else None)
