"""The ``http`` step (one HTTP request, its answer in the outputs) and ``notify`` (a Slack-compatible
message posted to a webhook whose URL is a secret), sent with httpx.

Each attempt of the step sends one request; nothing is retried inside the step. The step's own ``retry``
sends it again after any failure (no answer, no answer in ``requestTimeout``, a status not in
``expectedStatus``), and the step's ``timeout`` bounds each attempt as for every step, whichever comes
first. So ``requestTimeout: PT5S`` with ``retry: {maxAttempts: 3}`` makes up to three requests of five
seconds each.

Secrets: the values of credential headers (``Authorization``, ``Cookie``, ``X-Api-Key``, any name with
``token``, ``secret``, ``password`` or ``key``) are registered for redaction when the step runs, as
``secret()`` values are, so an answer that echoes them is ``***`` in the journal, the report and the
logs; a ``notify`` webhook must come from ``secret()`` and is never shown.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic.alias_generators import to_camel

from fleet.boundary.http import http_problem, status_problem
from fleet.errors import StepFailed
from fleet.playbook.context import StepContext, StepResult
from fleet.playbook.events import LogLine
from fleet.redaction import REGISTRY, redact, register_secret

JsonMap = dict[str, Any]
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: An answer's body is read up to this size; the rest is dropped (``truncated`` in the outputs).
MAX_BODY_BYTES = 1024 * 1024
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
_CREDENTIAL_WORDS = ("token", "secret", "password", "key")
#: Answer headers that carry credentials of their own: masked in the outputs.
_SET_CREDENTIAL_HEADERS = frozenset({"set-cookie", "www-authenticate", "proxy-authenticate"})
_STATUS_CLASS = re.compile(r"^[1-5]xx$")
_STATUS_SCHEMA: JsonMap = {
    "anyOf": [{"type": "integer", "minimum": 100, "maximum": 599}, {"type": "string", "pattern": _STATUS_CLASS.pattern}]
}
#: Statuses (201) or classes of them ("2xx"): one, or a list, as written; a list inside.
Statuses = Annotated[
    list[int | str], WithJsonSchema({"anyOf": [_STATUS_SCHEMA, {"type": "array", "items": _STATUS_SCHEMA}]})
]


class _Options(BaseModel):
    # A URL or a header may be a secret: errors never quote the input.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, hide_input_in_errors=True
    )


class _Exchange(_Options):
    """What every request step shares: the statuses that count as success and each request's deadline."""

    expected_status: Statuses = Field(default_factory=lambda: list[int | str](["2xx"]))
    request_timeout: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))

    @field_validator("expected_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        # "201" written in YAML quotes is the status 201, as 201 is.
        return [int(v) if isinstance(v, str) and v.isdigit() else v for v in values]

    @field_validator("expected_status")
    @classmethod
    def _statuses(cls, value: list[int | str]) -> list[int | str]:
        for status in value:
            ok = 100 <= status <= 599 if isinstance(status, int) else bool(_STATUS_CLASS.match(status))
            if not ok:
                raise ValueError(f"expected HTTP statuses (100 to 599) or classes of them (2xx), got {status!r}")
        return value

    def accepts(self, status: int) -> bool:
        return any(status == e if isinstance(e, int) else str(status)[0] == e[0] for e in self.expected_status)

    def expected(self) -> str:
        return " or ".join(str(e) for e in self.expected_status)


class HttpTask(_Exchange):
    """Send one HTTP request; the answer's status, headers and body (parsed when JSON) are the outputs."""

    method: Method = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    #: Text is sent as is (``text/plain`` unless a ``Content-Type`` header says otherwise); a map or a
    #: list is sent as JSON.
    body: str | JsonMap | list[Any] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # The URL is not quoted back: it may be a secret.
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an absolute http:// or https:// URL")
        return value.strip()

    async def run(self, ctx: StepContext) -> StepResult:
        return StepResult(await self.send(ctx))

    async def send(self, ctx: StepContext) -> JsonMap:
        """Send the request (secrets registered first) and check its status; the outputs of the answer."""
        self._register_credentials()
        import httpx  # here, not at start-up: only a run that sends a request needs it

        shown = redact(self.url)
        content, headers = self._content()
        started = time.monotonic()
        try:
            async with (
                httpx.AsyncClient(timeout=self.request_timeout.total_seconds()) as client,
                client.stream(self.method, self.url, headers=headers, content=content) as response,
            ):
                body, truncated = await _read(response)
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            problem = http_problem(e, self.method, shown)
            raise StepFailed(problem.message if problem else f"{self.method} {shown} failed") from e
        elapsed = time.monotonic() - started
        text = body.decode(response.encoding or "utf-8", errors="replace")
        await ctx.emit(
            LogLine(
                cluster=ctx.cluster,
                step=ctx.step_id,
                container="http",
                text=f"{self.method} {shown} answered {response.status_code} {response.reason_phrase} "
                f"in {elapsed * 1000:.0f} ms",
            )
        )
        if not self.accepts(response.status_code):
            problem = status_problem(
                self.method, shown, response.status_code, response.reason_phrase, text, self.expected()
            )
            raise StepFailed(problem.message)
        return {
            "status": response.status_code,
            "reason": response.reason_phrase,
            "headers": {k: ("***" if k in _SET_CREDENTIAL_HEADERS else v) for k, v in response.headers.multi_items()},
            "body": text,
            "json": None if truncated else _json(text, response.headers.get("content-type", "")),
            "truncated": truncated,
            "elapsed": round(elapsed, 3),
        }

    def _content(self) -> tuple[bytes | None, dict[str, str]]:
        headers = dict(self.headers)
        given = {k.lower() for k in headers}
        if self.body is None:
            return None, headers
        if isinstance(self.body, str):
            if "content-type" not in given:
                headers["Content-Type"] = "text/plain; charset=utf-8"
            return self.body.encode(), headers
        if "content-type" not in given:
            headers["Content-Type"] = "application/json"
        return json.dumps(self.body, separators=(",", ":"), default=str).encode(), headers

    def _register_credentials(self) -> None:
        for name, value in self.headers.items():
            if _is_credential(name):
                register_secret(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.isalpha():  # "Bearer <token>": the token alone, too
                    register_secret(credential)
        password = urlsplit(self.url).password
        if password:
            register_secret(password)


class NotifyTask(_Exchange):
    """Post a Slack-compatible message (``text``, optional ``blocks``) to a webhook whose URL is a secret."""

    webhook: str = Field(validation_alias=AliasChoices("webhook", "url"))
    text: str = Field(min_length=1)
    blocks: list[JsonMap] | None = None

    @field_validator("webhook")
    @classmethod
    def _from_a_secret(cls, value: str) -> str:
        if value.strip() not in REGISTRY.values():
            raise ValueError(
                "the webhook URL must come from a secret, e.g. "
                "webhook: \"{{ secret('env:SLACK_WEBHOOK_URL') }}\" (a URL written in the playbook is not one)"
            )
        return value.strip()

    async def run(self, ctx: StepContext) -> StepResult:
        message: JsonMap = {"text": self.text, **({"blocks": self.blocks} if self.blocks is not None else {})}
        request = HttpTask(
            method="POST",
            url=self.webhook,
            body=message,
            expected_status=list(self.expected_status),
            request_timeout=self.request_timeout,
        )
        answer = await request.send(ctx)
        return StepResult({"status": answer["status"], "body": answer["body"], "text": self.text})


def _is_credential(name: str) -> bool:
    lower = name.lower()
    return lower in CREDENTIAL_HEADERS or any(word in lower for word in _CREDENTIAL_WORDS)


async def _read(response: Any) -> tuple[bytes, bool]:
    """The answer's body, at most ``MAX_BODY_BYTES`` of it, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"".join(chunks)[:MAX_BODY_BYTES], True
    return b"".join(chunks), False


def _json(text: str, content_type: str) -> Any:
    """The body parsed, when it says it is JSON (``application/json``, ``…+json``) and parses."""
    media = content_type.split(";")[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
