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
    """A thread-safe set of secret values, and ``redact`` that masks them, longest first.

    No regular expression: a run registers several values per cluster connection (a whole kubeconfig,
    its token, and their base64 forms: 5,000 at 1,000 clusters), and rebuilding an alternation of
    thousands of such values after each registration took seconds per compile, and as much memory again
    in ``re``'s pattern cache. Nor a substring test per value: with thousands registered, that was most
    of the cost of writing a journal row.

    Instead each value is indexed by a few of its fixed-length pieces (``_TIERS``): a value of length
    ``L >= k + s - 1`` is filed under its ``s`` consecutive ``k``-character pieces from some offset, so
    that any occurrence of it in a text contains one of the text's pieces taken every ``s`` characters
    (the first multiple of ``s`` at or after the occurrence's offset is within ``s - 1`` of it). A text
    is cut into those pieces (``len / s`` slices per tier in use), the index gives the few values that
    may occur, and only those are tested and replaced. Few values registered: a test per value, as
    cheap. Registration is one insertion, not a re-sort. (1,500 values, the 300 clusters of a sim: a
    journal row of 650 characters in 25 us of CPU, 83 before; the index 0.4 MB.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        # Sorted by _order (longest first), so a secret that contains another is masked whole; replaced,
        # never mutated, so that ``redact`` reads a consistent snapshot without the lock.
        self._ordered: tuple[str, ...] = ()
        self._lengths: tuple[int, ...] = ()  # -len of each value in _ordered (ascending, for bisect)
        # One {piece: value, or values} per tier (most pieces belong to one value: no list, as a run
        # files tens of thousands); only ever added to (``clear`` replaces them), so that ``redact`` may
        # read them without the lock.
        self._index: tuple[dict[str, str | list[str]], ...] = tuple({} for _ in _TIERS)

    def register(self, value: str) -> None:
        """Remember ``value`` (and its base64 form, as kubeconfigs carry data) as a secret."""
        forms = {value, value.strip(), base64.b64encode(value.encode()).decode()}
        with self._lock:
            new = sorted(({f for f in forms if len(f) >= MIN_LENGTH} - self._values), key=_order)
            if not new:
                return
            ordered, lengths = list(self._ordered), list(self._lengths)
            for form in new:
                at = bisect.bisect_left(ordered, _order(form), key=_order)
                ordered.insert(at, form)
                lengths.insert(at, -len(form))
                self._file(form)
            self._values.update(new)
            self._ordered, self._lengths = tuple(ordered), tuple(lengths)

    def redact(self, text: str) -> str:
        """``text`` with every registered value replaced by ``***`` (longest first)."""
        ordered, lengths = self._ordered, self._lengths
        first = bisect.bisect_left(lengths, -len(text))  # values longer than the text cannot occur
        if len(ordered) - first <= _DIRECT:
            for value in ordered[first:]:
                if value in text:
                    text = text.replace(value, MASK)
            return text
        after: tuple[int, str] | None = None  # the last value replaced: only those after it are tried
        while True:
            for value in sorted(self._candidates(text), key=_order):
                if (after is None or _order(value) > after) and value in text:
                    text, after = text.replace(value, MASK), _order(value)
                    break  # the text changed: its pieces too
            else:
                return text

    def _candidates(self, text: str) -> set[str]:
        """The values that may occur in ``text`` (every one that does, and a few that do not)."""
        found: set[str] = set()
        size = len(text)
        for (piece, step), index in zip(_TIERS, self._index, strict=True):
            if index:
                for start in range(0, size - piece + 1, step):
                    filed = index.get(text[start : start + piece])
                    if filed is None:
                        continue
                    for value in (filed,) if isinstance(filed, str) else filed:
                        if len(value) <= size:
                            found.add(value)
        return found

    def _file(self, value: str) -> None:
        """Index ``value`` in the highest tier it is long enough for, under ``s`` consecutive pieces from
        the offset whose pieces are filed least so far (values may share most of their text, as the
        kubeconfigs of one sim: same CA, same layout): a text that has a common piece then tests few."""
        for (piece, step), index in reversed(list(zip(_TIERS, self._index, strict=True))):
            span = piece + step - 1
            if len(value) >= span:
                last = len(value) - span
                start, fewest = 0, -1
                for offset in range(0, last + 1, max(1, last // _OFFSETS_TRIED)):
                    first, final = value[offset : offset + piece], value[offset + step - 1 : offset + span]
                    load = _count(index.get(first)) + _count(index.get(final))
                    if fewest < 0 or load < fewest:
                        start, fewest = offset, load
                        if not load:
                            break
                for j in range(step):
                    key = value[start + j : start + j + piece]
                    filed = index.get(key)
                    if filed is None:
                        index[key] = value
                    elif isinstance(filed, str):
                        index[key] = [filed, value]
                    else:
                        filed.append(value)
                return

    def values(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._ordered, self._lengths = (), ()
            self._index = tuple({} for _ in _TIERS)


#: (piece length k, stride s): a value of at least k + s - 1 characters goes in the highest such tier.
_TIERS = ((MIN_LENGTH, 1), (4, 4), (8, 4))
#: Up to this many values that fit in the text, a substring test each is cheaper than cutting the text.
_DIRECT = 32
#: How many offsets of a value are weighed for its pieces (evenly spread).
_OFFSETS_TRIED = 32


def _order(value: str) -> tuple[int, str]:
    return (-len(value), value)


def _count(filed: str | list[str] | None) -> int:
    return 0 if filed is None else 1 if isinstance(filed, str) else len(filed)


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
