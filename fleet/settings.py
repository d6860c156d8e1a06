"""Settings read from ``FLEET_*`` environment variables (and an optional ``.env`` file).

A bad value is a ``SettingsError`` (an input error: exit code 2) that names the variable, or the ``.env``
line, the value and what is allowed; a secret-valued setting's value is never repeated.
``unknown_settings`` finds ``FLEET_*`` names that are no setting (misspelt ones get a suggestion).
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleet.errors import InputError

DOTENV = Path(".env")
#: Variables of fleet's own test suite (FLEET_TEST_KUBECONFIG …), not settings.
TEST_PREFIX = "FLEET_TEST_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(InputError):
    """One or more settings have values fleet cannot use; one sentence per setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class SettingsBase(BaseSettings):
    """Settings whose bad values raise ``SettingsError`` (a sentence), not pydantic's report."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            # pydantic's report repeats every value, secrets included: it is not chained.
            raise SettingsError([_problem(type(self), error, values) for error in e.errors()]) from None


class RetrySettings(SettingsBase):
    """The backoff policy for transient API errors, as data (kopf's NetworkingSettings)."""

    model_config = SettingsConfigDict(env_prefix="FLEET_RETRY_", env_file=DOTENV, extra="ignore", env_ignore_empty=True)

    attempts: int = Field(default=6, ge=1, description="tries per request, the first included")
    initial_delay: float = Field(default=0.2, gt=0, description="seconds before the second try")
    max_delay: float = Field(default=10.0, gt=0, description="cap on one backoff delay, in seconds")
    jitter: float = Field(default=0.2, ge=0, description="random extra delay, up to this many seconds")


class FleetSettings(SettingsBase):
    """Process-wide defaults. Every field can be set with an environment variable ``FLEET_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", env_file=DOTENV, extra="ignore", env_ignore_empty=True)

    journal: Path = Field(default=Path(".fleet/journal.sqlite"), description="run journal (SQLite)")
    artifacts: Path = Field(default=Path(".fleet/artifacts"), description="local artifact store")
    concurrency: int = Field(default=20, ge=1, description="clusters in flight at once")
    threads: int = Field(default=40, ge=1, description="worker threads for blocking client calls")
    request_timeout: float = Field(default=30.0, gt=0, description="seconds for one API request")
    vault_addr: str | None = Field(default=None, description="default Vault/OpenBao address")
    log_format: Literal["text", "json"] = Field(default="text", description="log output format")
    log_level: LogLevel | None = Field(
        default=None, description="logging level; unset: WARNING, INFO with -v, DEBUG with -vv"
    )
    defaults: Path | None = Field(
        default=None,
        description="installation-wide step defaults (YAML, as a playbook's defaults:), under each playbook's own",
    )
    pod_output_max_bytes: int = Field(
        default=1024**3, ge=1, description="most bytes the output files of one pod step may total (tar stream)"
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


_SETTINGS_CLASSES: tuple[type[SettingsBase], ...] = (FleetSettings, RetrySettings)


def _prefix(cls: type[SettingsBase]) -> str:
    return str(cls.model_config.get("env_prefix") or "")


def setting_names() -> frozenset[str]:
    """Every ``FLEET_*`` variable that is a setting."""
    return frozenset(
        _prefix(cls) + name.upper()
        for cls in _SETTINGS_CLASSES
        for name, field in cls.model_fields.items()
        if not _is_settings_class(field.annotation)
    )


def _is_settings_class(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, SettingsBase)


# -- what a bad value is told --------------------------------------------------------------------------


def _problem(cls: type[SettingsBase], error: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    name = str(error["loc"][0]) if error["loc"] else ""
    field = cls.model_fields.get(name)
    expected = allowed(field) if field is not None else str(error["msg"])
    variable = _prefix(cls) + name.upper()
    if name in values:
        where, value = f"the setting {name}", values[name]
    elif (raw := _from_environment(variable)) is not None:
        where, value = f"the environment variable {variable}", raw
    elif (line := dotenv_lines(DOTENV).get(variable)) is not None:
        where, value = f"{DOTENV}:{line}: {variable}", _dotenv_value(variable)
    else:
        where, value = variable, error.get("input")
    secret = field is not None and _is_secret(field)
    shown = "(its value is not shown: it is a secret)" if secret else repr(value)
    return f"{where} is {shown}; expected {expected}"


def _dotenv_value(variable: str) -> str | None:
    from dotenv import dotenv_values

    return next((v for k, v in dotenv_values(DOTENV).items() if k.upper() == variable), None)


def _from_environment(variable: str) -> str | None:
    # pydantic-settings matches names in any case.
    return next((value for key, value in os.environ.items() if key.upper() == variable), None)


def _is_secret(field: FieldInfo) -> bool:
    return any(arg is SecretStr for arg in (field.annotation, *typing.get_args(field.annotation)))


_KINDS: dict[object, str] = {int: "a whole number", float: "a number", str: "text", Path: "a path", SecretStr: "text"}


def allowed(field: FieldInfo) -> str:
    """What values a setting accepts, in words ("a whole number of at least 1", "text or json")."""
    annotation: Any = field.annotation
    choices = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(choices) == 1:
        annotation = choices[0]
    if typing.get_origin(annotation) is Literal:
        words = [str(v) for v in typing.get_args(annotation)]
        any_case = " (in any case)" if all(w.isupper() for w in words) else ""
        return f"{', '.join(words[:-1])} or {words[-1]}{any_case}"
    kind = _KINDS.get(annotation) or str(getattr(annotation, "__name__", annotation))
    bounds: list[str] = []
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            bounds.append(f"of at least {meta.ge}")
        elif isinstance(meta, annotated_types.Gt):
            bounds.append(f"greater than {meta.gt}")
        elif isinstance(meta, annotated_types.MinLen):
            bounds.append(f"of at least {meta.min_length} characters")
    return " ".join([kind, *bounds])


# -- names that are no setting ---------------------------------------------------------------------------

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def dotenv_lines(path: Path) -> dict[str, int]:
    """The (upper-cased) names assigned in a ``.env`` file and the line of each; empty without a file."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _ASSIGNMENT.match(line)
        if match:
            found.setdefault(match.group(1).upper(), number)
    return found


def unknown_settings(environ: Mapping[str, str] | None = None, dotenv: Path = DOTENV) -> list[str]:
    """A sentence for each ``FLEET_*`` name in the environment or ``dotenv`` that is no setting, with the
    setting it is probably a misspelling of. ``FLEET_TEST_*`` (the test suite's variables) are left alone."""
    known = setting_names()
    nested = {_prefix(RetrySettings).rstrip("_")}  # FLEET_RETRY: the whole policy as JSON
    sources = [
        *((f"the environment variable {name}", name.upper()) for name in (os.environ if environ is None else environ)),
        *((f"{dotenv}:{line}: {name}", name) for name, line in dotenv_lines(dotenv).items()),
    ]
    found = []
    for where, name in sources:
        if not name.startswith("FLEET_") or name.startswith(TEST_PREFIX) or name in known or name in nested:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else " (it is ignored)"
        found.append(f"{where} is not a fleet setting{hint}")
    return found
