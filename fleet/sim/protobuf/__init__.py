"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``), decoded to JSON objects.

kubectl's typed clients (``kubectl create namespace|configmap|secret|deployment|...``, ``drain``'s
evictions and deletes) send this encoding: the 4-byte magic ``k8s\\0``, then a ``runtime.Unknown``
whose ``typeMeta`` names the kind and whose ``raw`` holds the object's message. The message
definitions are generated from kubectl's own descriptors (``messages.py``, by ``regen.py``); the wire
format is read by ``wire.py`` and turned into JSON by ``codec.py``.

``decode_object(body)`` returns the object (with ``apiVersion`` and ``kind``) or raises
``ProtobufError`` (a malformed body, an unknown kind: 400) or ``UndecodedKind`` (a served kind whose
messages kubectl does not carry: 415).
"""

from __future__ import annotations

from typing import Any

from fleet.sim.protobuf.wire import ProtobufError

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


class UndecodedKind(ProtobufError):
    """A kind the sim serves whose protobuf messages it lacks."""


def decode_object(body: bytes) -> dict[str, Any]:
    """The Kubernetes object in a protobuf request body."""
    from fleet.sim.protobuf.codec import decode_envelope, decode_message
    from fleet.sim.protobuf.messages import KINDS, UNDECODED

    if not body:
        raise ProtobufError("the body is empty; expected a protobuf-encoded object", 0)
    if not body.startswith(MAGIC):
        raise ProtobufError(f"the body does not start with the magic number k8s\\x00 (it starts {body[:4]!r})", 0)
    envelope, raw = decode_envelope(body, len(MAGIC), len(body))
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if envelope.get("contentEncoding"):
        raise ProtobufError(f"unsupported contentEncoding {envelope['contentEncoding']!r} (only none)", 0)
    if envelope.get("contentType", "") not in ("", MEDIA_TYPE):
        raise ProtobufError(f"unsupported contentType {envelope['contentType']!r} inside the envelope", 0)
    if (api_version, kind) in UNDECODED:
        raise UndecodedKind(f"protobuf bodies of {kind} ({api_version}) are not decoded by fleet.sim; send JSON", 0)
    message = KINDS.get((api_version, kind))
    if message is None:
        raise ProtobufError(f'no kind "{kind}" is registered for version "{api_version}"', 0)
    return {"apiVersion": api_version, "kind": kind, **decode_message(body, *raw, message)}


__all__ = ["MAGIC", "MEDIA_TYPE", "ProtobufError", "UndecodedKind", "decode_object"]
