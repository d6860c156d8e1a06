"""Secret references: one syntax for every place a value may come from a secret store.

    vault:<mount>/<path>#<key>[?version=N]     Vault/OpenBao KV (v1 or v2; version only on v2)
    aws-sm:<name or ARN>[#<key>][?version=ID]   AWS Secrets Manager (key: a field of a JSON SecretString)
    env:<VAR>                                   an environment variable of the fleet process
    file:<path>                                 a file (without its final line break); a relative path is
                                                relative to the inventory file

A string that does not start with one of these schemes is a literal value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fleet.errors import InputError

Scheme = Literal["vault", "aws-sm", "env", "file"]
SCHEMES: tuple[Scheme, ...] = ("vault", "aws-sm", "env", "file")
SYNTAX = (
    "vault:<mount>/<path>#<key>[?version=N], aws-sm:<name or ARN>[#<key>][?version=ID], env:<VAR> or file:<path>"
)

_PREFIX_RE = re.compile(r"^(vault|aws-sm|env|file):")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ReferenceSyntaxError(InputError):
    """A string that starts like a reference but does not follow the syntax."""


@dataclass(frozen=True)
class SecretRef:
    """A parsed reference. ``text`` is what the user wrote (safe to show: it names, never holds, a secret)."""

    scheme: Scheme
    path: str
    key: str | None = None
    version: str | None = None
    text: str = ""
    base_dir: Path | None = None

    @property
    def mount(self) -> str:
        """Vault: the secrets engine mount (the first path segment)."""
        return self.path.split("/", 1)[0]

    @property
    def secret_path(self) -> str:
        """Vault: the path inside the mount."""
        return self.path.split("/", 1)[1] if "/" in self.path else ""

    def file_path(self) -> Path:
        path = Path(self.path).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def __str__(self) -> str:
        return self.text


def is_reference(text: str) -> bool:
    """True when ``text`` starts with a reference scheme (and so must parse as one)."""
    return bool(_PREFIX_RE.match(text))


def _split_query(rest: str, text: str) -> tuple[str, str | None]:
    if "?" not in rest:
        return rest, None
    rest, query = rest.rsplit("?", 1)
    name, sep, value = query.partition("=")
    if name != "version" or not sep or not value:
        raise ReferenceSyntaxError(f"{text!r}: the only option is ?version=<version>, got ?{query}")
    return rest, value


def parse_reference(text: str, base_dir: Path | None = None) -> SecretRef:
    """Parse a reference; raise ``ReferenceSyntaxError`` with the expected syntax when it is malformed."""
    m = _PREFIX_RE.match(text)
    if m is None:
        raise ReferenceSyntaxError(f"{text!r} is not a secret reference; expected {SYNTAX}")
    scheme: Scheme = m.group(1)  # type: ignore[assignment]
    rest = text[m.end() :]
    if scheme == "env":
        if not _ENV_RE.match(rest):
            raise ReferenceSyntaxError(f"{text!r}: expected env:<VARIABLE_NAME>")
        return SecretRef("env", rest, text=text)
    if scheme == "file":
        if not rest:
            raise ReferenceSyntaxError(f"{text!r}: expected file:<path>")
        return SecretRef("file", rest, text=text, base_dir=base_dir)
    rest, version = _split_query(rest, text)
    path, sep, key = rest.partition("#")
    if scheme == "vault":
        if "/" not in path.strip("/") or not key:
            raise ReferenceSyntaxError(f"{text!r}: expected vault:<mount>/<path>#<key>[?version=N]")
        if version is not None and not version.isdigit():
            raise ReferenceSyntaxError(f"{text!r}: a Vault KV version is a positive integer, got {version!r}")
        return SecretRef("vault", path.strip("/"), key, version, text=text)
    if not path or (sep and not key):
        raise ReferenceSyntaxError(f"{text!r}: expected aws-sm:<name or ARN>[#<key>][?version=ID]")
    return SecretRef("aws-sm", path, key or None, version, text=text)
