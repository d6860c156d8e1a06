"""The redaction registry: every secret value fleet resolves is registered here, and ``redact`` and
``RedactingFilter`` replace registered values with ``***`` in text, log records and error messages.

Every layer redacts (the library error boundaries, the journal, the reports, the CLI's logs), so the
registry sits beside ``fleet.errors``, outside the layers; ``fleet.secrets`` re-exports it."""

from __future__ import annotations

import base64
import bisect
import logging
import threading

MASK = "***"
# Shorter values would mask ordinary words in every log line; secrets that short are not secrets.
MIN_LENGTH = 4


class RedactionRegistry:
    """A thread-safe set of secret values, kept longest first, and ``redact`` that masks them.

    No regular expression: a run registers one value per cluster connection (a whole kubeconfig, and
    its base64 form), and rebuilding an alternation of thousands of such values after each
    registration took seconds per compile, and as much memory again in ``re``'s pattern cache. A
    substring test per value is cheap, and a value longer than the text is not even tried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        # Longest first, so a secret that contains another is masked whole; replaced, never mutated,
        # so that ``redact`` reads a consistent snapshot without the lock.
        self._ordered: tuple[str, ...] = ()
        self._lengths: tuple[int, ...] = ()  # -len of each value in _ordered (ascending, for bisect)

    def register(self, value: str) -> None:
        """Remember ``value`` (and its base64 form, as kubeconfigs carry data) as a secret."""
        forms = {value, value.strip(), base64.b64encode(value.encode()).decode()}
        with self._lock:
            new = {f for f in forms if len(f) >= MIN_LENGTH} - self._values
            if new:
                self._values.update(new)
                self._set_order()

    def redact(self, text: str) -> str:
        """``text`` with every registered value replaced by ``***``."""
        ordered, lengths = self._ordered, self._lengths
        for value in ordered[bisect.bisect_left(lengths, -len(text)) :]:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def values(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._set_order()

    def _set_order(self) -> None:
        ordered = sorted(self._values, key=len, reverse=True)
        self._ordered, self._lengths = tuple(ordered), tuple(-len(v) for v in ordered)


REGISTRY = RedactionRegistry()


def register_secret(value: str) -> None:
    """Register a resolved secret value with the process-wide registry."""
    REGISTRY.register(value)


def redact(text: str) -> str:
    """``text`` with every registered secret value replaced by ``***``."""
    return REGISTRY.redact(text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the rendered message and traceback of every record it sees.

    Attach it to handlers (``install_log_redaction``): filters on a logger do not see records that
    propagate from child loggers.
    """

    def __init__(self, registry: RedactionRegistry = REGISTRY) -> None:
        super().__init__()
        self.registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.registry.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.registry.redact(record.exc_text)
        return True


#: libraries whose DEBUG records carry request or response bodies (a secret store's answer is
#: logged before fleet has seen, let alone registered, the value in it)
PAYLOAD_LOGGERS = ("botocore", "boto3", "hvac", "google.auth", "werkzeug")


def quiet_payload_loggers(level: int = logging.INFO) -> None:
    """Keep the loggers of ``PAYLOAD_LOGGERS`` at ``level`` or above, whatever the root level is."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < level:
            logger.setLevel(level)


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one ``RedactingFilter`` to every handler of ``logger`` (the root logger by default), and
    quiet the libraries that log payloads."""
    quiet_payload_loggers()
    target = logger or logging.getLogger()
    flt = RedactingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt
