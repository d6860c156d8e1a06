"""Settings read from ``FLEET_*`` environment variables (and an optional ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetrySettings(BaseSettings):
    """The backoff policy for transient API errors, as data (kopf's NetworkingSettings)."""

    model_config = SettingsConfigDict(env_prefix="FLEET_RETRY_", env_file=".env", extra="ignore")

    attempts: int = Field(default=6, ge=1, description="tries per request, the first included")
    initial_delay: float = Field(default=0.2, gt=0, description="seconds before the second try")
    max_delay: float = Field(default=10.0, gt=0, description="cap on one backoff delay, in seconds")
    jitter: float = Field(default=0.2, ge=0, description="random extra delay, up to this many seconds")


class FleetSettings(BaseSettings):
    """Process-wide defaults. Every field can be set with an environment variable ``FLEET_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", env_file=".env", extra="ignore")

    journal: Path = Field(default=Path(".fleet/journal.sqlite"), description="run journal (SQLite)")
    artifacts: Path = Field(default=Path(".fleet/artifacts"), description="local artifact store")
    concurrency: int = Field(default=20, ge=1, description="clusters in flight at once")
    threads: int = Field(default=40, ge=1, description="worker threads for blocking client calls")
    request_timeout: float = Field(default=30.0, gt=0, description="seconds for one API request")
    vault_addr: str | None = Field(default=None, description="default Vault/OpenBao address")
    log_format: Literal["text", "json"] = Field(default="text", description="log output format")
    log_level: str | None = Field(
        default=None, description="logging level; unset: WARNING, INFO with -v, DEBUG with -vv"
    )
    defaults: Path | None = Field(
        default=None,
        description="installation-wide step defaults (YAML, as a playbook's defaults:), under each playbook's own",
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
