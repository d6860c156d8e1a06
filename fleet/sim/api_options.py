"""The options of a write (``CreateOptions``, ``UpdateOptions``, ``PatchOptions``, ``DeleteOptions``), checked first.

As on the API server, options that do not validate make the request ``422 Invalid`` for the options kind
in group ``meta.k8s.io`` (``CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value ...``),
with one cause per field, before the body is looked at.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fleet.sim.api_http import Request
from fleet.sim.model import JsonObject, StatusError

OptionsKind = Literal["CreateOptions", "UpdateOptions", "PatchOptions", "DeleteOptions"]

APPLY_PATCH = "application/apply-patch+yaml"
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
PROPAGATION = ("Foreground", "Background", "Orphan")
MAX_FIELD_MANAGER = 128

_Cause = tuple[str, str, str]  # reason, field, message


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(json.dumps(v) for v in values)


def _unsupported(field: str, value: Any, supported: tuple[str, ...]) -> _Cause:
    return (
        "FieldValueNotSupported",
        field,
        f"Unsupported value: {json.dumps(value)}: supported values: {_quoted(supported)}",
    )


def options_invalid(kind: OptionsKind, causes: list[_Cause]) -> StatusError:
    details = "; ".join(f"{field}: {message}" for _, field, message in causes)
    return StatusError(
        422,
        "Invalid",
        f'{kind}.meta.k8s.io "" is invalid: {details}'
        if len(causes) == 1
        else f'{kind}.meta.k8s.io "" is invalid: [{details}]',
        {
            "group": "meta.k8s.io",
            "kind": kind,
            "causes": [{"reason": reason, "message": message, "field": field} for reason, field, message in causes],
        },
    )


def _dry_run_causes(values: list[str]) -> list[_Cause]:
    if not values or values == ["All"]:
        return []
    return [_unsupported("dryRun", values, ("All",))]


def check_write_options(req: Request, kind: OptionsKind) -> None:
    """Validate a create's, update's or patch's query options (dryRun, fieldManager, fieldValidation, force)."""
    causes: list[_Cause] = []
    dry_run = req.query.get("dryRun")
    causes += _dry_run_causes([] if dry_run is None else [dry_run])
    manager = req.query.get("fieldManager", "")
    if len(manager.encode()) > MAX_FIELD_MANAGER:
        causes.append(
            ("FieldValueTooLong", "fieldManager", f"Too long: may not be more than {MAX_FIELD_MANAGER} bytes")
        )
    elif not manager.isprintable():
        causes.append(
            (
                "FieldValueInvalid",
                "fieldManager",
                f"Invalid value: {json.dumps(manager)}: must only contain printable characters",
            )
        )
    validation = req.query.get("fieldValidation")
    if validation not in (None, "", *FIELD_VALIDATION):
        causes.append(_unsupported("fieldValidation", validation, FIELD_VALIDATION))
    if kind == "PatchOptions":
        if req.content_type == APPLY_PATCH:
            if not manager:
                causes.insert(0, ("FieldValueRequired", "fieldManager", "Required value: is required for apply patch"))
        elif "force" in req.query:
            causes.insert(0, ("FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch"))
    if causes:
        raise options_invalid(kind, causes)


def check_delete_options(options: JsonObject) -> None:
    """Validate decoded ``DeleteOptions`` (propagationPolicy, the deprecated orphanDependents, dryRun)."""
    causes: list[_Cause] = []
    policy = options.get("propagationPolicy")
    if policy is not None and options.get("orphanDependents") is not None:
        causes.append(
            (
                "FieldValueInvalid",
                "propagationPolicy",
                f"Invalid value: {json.dumps(policy)}: orphanDependents and deletionPropagation cannot be both set",
            )
        )
    if policy is not None and policy not in PROPAGATION:
        causes.append(_unsupported("propagationPolicy", policy, (*PROPAGATION, "nil")))
    dry_run = options.get("dryRun") or []
    causes += _dry_run_causes(dry_run if isinstance(dry_run, list) else [dry_run])
    if causes:
        raise options_invalid("DeleteOptions", causes)
