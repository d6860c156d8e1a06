"""The protocol buffers wire format, read with bounds checked at every step.

``fields(buf, start, end)`` yields each field of one message as ``(number, wire_type, value)``: an int
for varints and fixed-width values, a ``(start, end)`` span of ``buf`` for length-delimited ones (so a
nested message is read in place, never copied). Anything malformed raises ``ProtobufError`` with the byte
offset: a truncated varint, one longer than ten bytes, a length past the end of its message, field
number 0, groups (deprecated, never sent by Kubernetes), the undefined wire types 6 and 7.
"""

from __future__ import annotations

from collections.abc import Iterator

from fleet.sim.errors import SimError

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
WIRE_NAMES = {VARINT: "varint", FIXED64: "fixed64", LENGTH: "length-delimited", FIXED32: "fixed32"}
_MAX_VARINT_BYTES = 10

Value = int | tuple[int, int]


class ProtobufError(SimError, ValueError):
    """A body that is not a well-formed Kubernetes protobuf object: what is wrong, at which byte, and in
    which field (``path``, outermost first, filled in as the error leaves each message)."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.path: list[str] = []

    def __str__(self) -> str:
        where = f" in {'.'.join(self.path)}" if self.path else ""
        return f"{self.reason}{where} (at byte {self.offset})"


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = shift = 0
    for i in range(pos, min(end, pos + _MAX_VARINT_BYTES)):
        byte = buf[i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i + 1
        shift += 7
    if end - pos >= _MAX_VARINT_BYTES:
        raise ProtobufError("varint longer than 10 bytes", pos)
    raise ProtobufError("unexpected end of data inside a varint", end)


def fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, Value]]:
    """Each field of the message in ``buf[start:end]``."""
    pos = start
    while pos < end:
        tag_at = pos
        tag, pos = read_varint(buf, pos, end)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise ProtobufError("field number 0 is not allowed", tag_at)
        value: Value
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos, end)
        elif wire_type == LENGTH:
            length, pos = read_varint(buf, pos, end)
            if length > end - pos:
                raise ProtobufError(f"field {number}: length {length} runs past the end ({end - pos} bytes left)", pos)
            value, pos = (pos, pos + length), pos + length
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if size > end - pos:
                raise ProtobufError(f"field {number}: unexpected end of data inside a fixed{size * 8}", end)
            value, pos = int.from_bytes(buf[pos : pos + size], "little"), pos + size
        elif wire_type in (START_GROUP, END_GROUP):
            raise ProtobufError(f"field {number}: groups (wire types 3 and 4) are not supported", tag_at)
        else:
            raise ProtobufError(f"field {number}: invalid wire type {wire_type}", tag_at)
        yield number, wire_type, value
