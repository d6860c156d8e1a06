"""Request bodies by their content type: JSON, YAML, or Kubernetes protobuf (``fleet.sim.protobuf``).

``object_body(req)`` is the object a create, replace, delete or subresource request sends; a body that
does not decode is 400 BadRequest, a content type the sim does not read is 415 UnsupportedMediaType.
"""

from __future__ import annotations

from fleet.sim.api_http import JSON, Request, bad_request
from fleet.sim.model import JsonObject, StatusError
from fleet.sim.patch import parse_apply_body
from fleet.sim.protobuf import MEDIA_TYPE as PROTOBUF

YAML = "application/yaml"
ACCEPTED = (JSON, YAML, PROTOBUF)


def object_body(req: Request) -> JsonObject:
    content_type = req.content_type
    if content_type in ("", JSON):
        return req.json_body()
    if content_type == YAML:
        return parse_apply_body(req.body)
    if content_type == PROTOBUF:
        return _protobuf(req.body)
    raise unsupported(content_type)


def unsupported(content_type: str) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f'{", ".join(ACCEPTED)} (got "{content_type}")',
    )


def _protobuf(body: bytes) -> JsonObject:
    from fleet.sim.protobuf import ProtobufError, UndecodedKind, decode_object

    try:
        return decode_object(body)
    except UndecodedKind as e:
        raise StatusError(415, "UnsupportedMediaType", e.reason) from None
    except ProtobufError as e:
        raise bad_request(f"the request body is not a valid protobuf object: {e}") from None
