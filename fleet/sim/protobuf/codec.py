"""Kubernetes protobuf objects to the JSON objects the sim stores, message by message.

A field decodes as Go's JSON encoding would show it: a zero in a field that is not a Go pointer is
Go's "unset" and is left out; ``bytes`` become base64 strings; the types with their own JSON form
(``Time``, ``MicroTime``, ``Quantity``, ``IntOrString``, ``RawExtension``, ``FieldsV1``,
``ExtraValue``) are converted below. Unknown field numbers are skipped, as the API server's decoder
does; a known field sent with the wrong wire type, a string that is not UTF-8 or a nesting deeper
than ``MAX_DEPTH`` raise ``ProtobufError``.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import struct
from collections.abc import Callable
from typing import Any

import orjson

from fleet.sim.protobuf.messages import MESSAGES
from fleet.sim.protobuf.model import Field
from fleet.sim.protobuf.wire import FIXED32, FIXED64, LENGTH, VARINT, WIRE_NAMES, ProtobufError, fields, read_varint

MAX_DEPTH = 64
ENVELOPE = "k8s.io.apimachinery.pkg.runtime.Unknown"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_WIRE_TYPE = {
    **dict.fromkeys(("int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool"), VARINT),
    **dict.fromkeys(("fixed64", "sfixed64", "double"), FIXED64),
    **dict.fromkeys(("fixed32", "sfixed32", "float"), FIXED32),
    **dict.fromkeys(("string", "bytes", "message"), LENGTH),
}
_ZERO: dict[str, Any] = {"string": "", "bytes": "", "bool": False, "double": 0.0, "float": 0.0}


def decode_message(buf: bytes, start: int, end: int, name: str, depth: int = 0) -> dict[str, Any]:
    """The message ``name`` in ``buf[start:end]`` as a JSON object, before its own JSON form (if its
    type has one) is applied by ``decode_value``."""
    if depth > MAX_DEPTH:
        raise ProtobufError(f"objects nested deeper than {MAX_DEPTH} levels", start)
    spec = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire_type, value in fields(buf, start, end):
        f = spec.get(number)
        if f is None:
            continue
        try:
            _decode_field(buf, f, wire_type, value, out, depth)
        except ProtobufError as e:
            e.path.insert(0, f.name)
            raise
    return out


def decode_envelope(buf: bytes, start: int, end: int) -> tuple[dict[str, Any], tuple[int, int]]:
    """The ``runtime.Unknown`` in ``buf[start:end]``: its fields but ``raw``, and where ``raw`` lies (the
    object is decoded in place from there)."""
    spec = MESSAGES[ENVELOPE]
    out: dict[str, Any] = {}
    raw = (end, end)
    for number, wire_type, value in fields(buf, start, end):
        f = spec.get(number)
        if f is None:
            continue
        if f.type == "bytes":
            span = _checked(f, wire_type, value)
            assert isinstance(span, tuple)
            raw = span
        else:
            _decode_field(buf, f, wire_type, value, out, 0)
    return out, raw


def _decode_field(buf: bytes, f: Field, wire_type: int, value: int | tuple[int, int], out: dict[str, Any],
                  depth: int) -> None:  # fmt: skip
    if f.key:
        _expect(f, wire_type, LENGTH)
        assert isinstance(value, tuple)
        key, item = _map_entry(buf, f, value, depth)
        out.setdefault(f.name, {})[key] = item
    elif f.repeated:
        items = out.setdefault(f.name, [])
        if wire_type == LENGTH and _WIRE_TYPE[f.type] != LENGTH:
            assert isinstance(value, tuple)
            items.extend(_packed(buf, f, value))
        else:
            items.append(decode_value(buf, f.type, f.message, _checked(f, wire_type, value), depth))
    else:
        decoded = decode_value(buf, f.type, f.message, _checked(f, wire_type, value), depth)
        if f.inline:
            out.update(decoded)
        elif decoded is None or (not f.pointer and f.type != "message" and not decoded):
            out.pop(f.name, None)
        else:
            out[f.name] = decoded


def _checked(f: Field, wire_type: int, value: int | tuple[int, int]) -> int | tuple[int, int]:
    _expect(f, wire_type, _WIRE_TYPE[f.type])
    return value


def _expect(f: Field, wire_type: int, expected: int) -> None:
    if wire_type != expected:
        raise ProtobufError(
            f"wire type {WIRE_NAMES.get(wire_type, wire_type)} where {f.type} ({WIRE_NAMES[expected]}) is expected", 0
        )


def _packed(buf: bytes, f: Field, span: tuple[int, int]) -> list[Any]:
    items: list[Any] = []
    pos, end = span
    size = {FIXED64: 8, FIXED32: 4}.get(_WIRE_TYPE[f.type])
    while pos < end:
        if size is None:
            raw, pos = read_varint(buf, pos, end)
        elif end - pos < size:
            raise ProtobufError("packed values end in the middle of one", pos)
        else:
            raw, pos = int.from_bytes(buf[pos : pos + size], "little"), pos + size
        items.append(decode_value(buf, f.type, "", raw, 0))
    return items


def _map_entry(buf: bytes, f: Field, span: tuple[int, int], depth: int) -> tuple[Any, Any]:
    key: Any = _ZERO.get(f.key, 0)
    item: Any = None
    for number, wire_type, value in fields(buf, *span):
        if number == 1:
            _expect(f, wire_type, _WIRE_TYPE[f.key])
            key = decode_value(buf, f.key, "", value, depth)
        elif number == 2:
            _expect(f, wire_type, _WIRE_TYPE[f.type])
            item = decode_value(buf, f.type, f.message, value, depth)
    if item is None:
        item = {} if f.type == "message" else _ZERO.get(f.type, 0)
    return key, item


def decode_value(buf: bytes, type_: str, message: str, value: int | tuple[int, int], depth: int) -> Any:
    """One value of a field, as JSON shows it."""
    if isinstance(value, tuple):
        start, end = value
        if type_ == "message":
            decoded = decode_message(buf, start, end, message, depth + 1)
            convert = _CUSTOM.get(message)
            return decoded if convert is None else convert(decoded, start)
        raw = buf[start:end]
        if type_ == "bytes":
            return base64.b64encode(raw).decode()
        try:
            return raw.decode()
        except UnicodeDecodeError as e:
            raise ProtobufError(f"a string that is not UTF-8 ({e.reason})", start + e.start) from None
    return _number(type_, value)


def _number(type_: str, value: int) -> Any:
    if type_ == "bool":
        return value != 0
    if type_ in ("int32", "sfixed32"):
        return _signed(value, 32)
    if type_ in ("int64", "sfixed64"):
        return _signed(value, 64)
    if type_ == "uint32":
        return value & 0xFFFFFFFF
    if type_ in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    if type_ in ("double", "float"):
        number: float = struct.unpack(
            "<d" if type_ == "double" else "<f", value.to_bytes(8 if type_ == "double" else 4, "little")
        )[0]
        if not math.isfinite(number):
            raise ProtobufError(f"{number} has no JSON form", 0)
        return number
    return value & 0xFFFFFFFFFFFFFFFF


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# -- the types whose JSON is not their message ---------------------------------------------------------


def _time(fmt: str, micro: bool) -> Callable[[dict[str, Any], int], str | None]:
    def convert(msg: dict[str, Any], offset: int) -> str | None:
        seconds, nanos = msg.get("seconds", 0), msg.get("nanos", 0)
        if not seconds and not nanos:
            return None  # Go's zero time, JSON null
        try:
            moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise ProtobufError(f"a time {seconds} seconds from 1970 is out of range", offset) from None
        text = moment.strftime(fmt)
        return f"{text}.{nanos // 1000:06d}Z" if micro else f"{text}Z"

    return convert


def _json_bytes(key: str) -> Callable[[dict[str, Any], int], Any]:
    def convert(msg: dict[str, Any], offset: int) -> Any:
        raw = base64.b64decode(msg.get(key, ""))
        if not raw:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ProtobufError(f"embedded JSON that does not parse ({e})", offset) from None

    return convert


def _int_or_string(msg: dict[str, Any], offset: int) -> int | str:
    if msg.get("type", 0) == 1:
        return str(msg.get("strVal", ""))
    return int(msg.get("intVal", 0))


_CUSTOM: dict[str, Callable[[dict[str, Any], int], Any]] = {
    _META + "Time": _time("%Y-%m-%dT%H:%M:%S", micro=False),
    _META + "MicroTime": _time("%Y-%m-%dT%H:%M:%S", micro=True),
    _META + "FieldsV1": _json_bytes("Raw"),
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _json_bytes("raw"),
    "k8s.io.apimachinery.pkg.api.resource.Quantity": lambda msg, _: str(msg.get("string", "")),
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
    "k8s.io.api.authentication.v1.ExtraValue": lambda msg, _: list(msg.get("items", [])),
    "k8s.io.api.authorization.v1.ExtraValue": lambda msg, _: list(msg.get("items", [])),
}
