"""One field of a Kubernetes protobuf message, as ``fleet.sim.protobuf.messages`` lists them."""

from __future__ import annotations

from typing import NamedTuple


class Field(NamedTuple):
    """``type`` is a protobuf scalar type (``string``, ``int32``, ``bytes``, ...) or ``message`` (then
    ``message`` names it). A map has ``key`` set (its key type) and ``type``/``message`` describe its
    values. ``pointer``: the Go field is a pointer, so a zero value sent is meant (``replicas: 0``); a
    zero in a field that is not a pointer is Go's "unset" and is left out of the JSON object. ``inline``:
    an embedded Go struct (``json:",inline"``), whose fields JSON puts in the enclosing object."""

    name: str  # the JSON name
    type: str
    message: str = ""
    key: str = ""
    repeated: bool = False
    pointer: bool = False
    inline: bool = False
