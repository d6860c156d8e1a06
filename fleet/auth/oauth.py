"""The oauth token provider: run a configured command whose output holds a token, extract the token
with a template, and keep it for a duration (default PT5M; PT0S disables the cache)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from jinja2 import TemplateError

from fleet.auth.errors import AuthError
from fleet.auth.provider import RefreshingTokenProvider, Token
from fleet.templating import TEMPLATES

DEFAULT_TEMPLATE = "{{ output | trim }}"
DEFAULT_CACHE = timedelta(minutes=5)
COMMAND_TIMEOUT = 60.0


def extract_token(template: str, output: str) -> str:
    """Render ``template`` with ``output`` (the command's stdout) and ``json`` (it parsed, if JSON)."""
    try:
        parsed: Any = json.loads(output)
    except ValueError:
        parsed = None
    try:
        return TEMPLATES.from_string(template).render(output=output, json=parsed).strip()
    except TemplateError as e:
        raise AuthError(f"oauth token provider: the token template failed: {e.message or e}") from None


class CommandTokenProvider(RefreshingTokenProvider):
    """Runs ``command`` (no shell) and extracts the token from its output."""

    kind = "oauth"

    def __init__(
        self,
        command: Sequence[str],
        *,
        template: str = DEFAULT_TEMPLATE,
        cache: timedelta = DEFAULT_CACHE,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        kwargs = {"clock": clock} if clock is not None else {}
        super().__init__(refresh_ahead=0.0, **kwargs)
        if not command:
            raise ValueError("the oauth token provider needs a command")
        self.command = list(command)
        self.template = template
        self.cache = cache
        self.env = dict(env or {})

    def _mint(self) -> Token:
        started = self._clock()
        try:
            done = subprocess.run(
                self.command,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                env={**os.environ, **self.env},
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AuthError(f"oauth token provider: cannot run {self.command[0]!r}: {e}") from None
        if done.returncode != 0:
            # stderr may echo credentials; say only that it failed and how.
            raise AuthError(f"oauth token provider: {self.command[0]!r} exited with code {done.returncode}")
        value = extract_token(self.template, done.stdout)
        if not value:
            raise AuthError(f"oauth token provider: the template gave an empty token for {self.command[0]!r}")
        seconds = self.cache.total_seconds()
        # A zero cache means "run the command for every request": the token is stale at once.
        return Token(value, started + seconds)
