"""JSON patch (RFC 6902, ``application/json-patch+json``) through the ``jsonpatch`` library.

Errors are those of the API server: a document that is not a list of operations is 400 BadRequest;
an operation that cannot be applied (a failing ``test``, a missing path) is 422 Invalid with the
library's reason as the cause, as ``kube-apiserver`` answers.
"""

from __future__ import annotations

from typing import Any

import jsonpatch

from fleet.sim.model import JsonObject, StatusError
from fleet.sim.patch.jsoncopy import json_copy

_REJECTED = "the server rejected our request due to an error in our request"


def json_patch(original: JsonObject, operations: Any) -> JsonObject:
    """The object ``original`` becomes after ``operations``; ``original`` is not modified."""
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise StatusError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    result: Any = json_copy(original)
    # One operation at a time, so that an error can name the operation that failed.
    for op in operations:
        try:
            result = jsonpatch.JsonPatch([op]).apply(result, in_place=True)
        except jsonpatch.InvalidJsonPatch as exc:
            raise StatusError(
                400, "BadRequest", f"invalid JSON patch operation {op.get('op')!r} on {op.get('path')!r}: {exc}"
            ) from exc
        except jsonpatch.JsonPatchTestFailed as exc:
            raise _unprocessable(f"testing value {op.get('path')} failed: test failed") from exc
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, ValueError) as exc:
            raise _unprocessable(f"{op.get('op')} operation on {op.get('path')!r} does not apply: {exc}") from exc
    if not isinstance(result, dict):
        raise _unprocessable("the patched document is not an object")
    return result


def _unprocessable(cause: str) -> StatusError:
    return StatusError(
        422,
        "Invalid",
        _REJECTED,
        {"causes": [{"reason": "UnexpectedServerResponse", "message": cause}]},
    )
