"""The playbook's JSON schema for editors: the models' schema, with each operation step type drawn with
its own options beside ``id``/``type`` (as users write them) instead of the internal ``options`` map.
Published as ``playbooks/playbook.schema.json`` (a test keeps the file equal to this)."""

from __future__ import annotations

from typing import Any

from fleet.playbook.model import Playbook
from fleet.playbook.steps import OPTIONS

_REF = "#/$defs/OperationStep"


def _step_name(step_type: str) -> str:
    return "".join(part.capitalize() for part in step_type.split(".")) + "Step"  # vault.read: VaultReadStep


def playbook_schema() -> dict[str, Any]:
    schema = Playbook.model_json_schema(by_alias=True)
    defs: dict[str, Any] = schema["$defs"]
    operation = defs.pop("OperationStep")
    common = {k: v for k, v in operation["properties"].items() if k not in ("options", "type")}
    for step_type, model in OPTIONS.items():
        options = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(options.pop("$defs", {}))
        defs[_step_name(step_type)] = {
            "title": _step_name(step_type),
            "description": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else "",
            "type": "object",
            "properties": {**common, "type": {"const": step_type}, **options.get("properties", {})},
            "required": sorted({"id", "type", *options.get("required", [])}),
            "additionalProperties": False,
        }
    steps = defs["Rollback"]["properties"]["steps"]
    schema["properties"]["rollback"] = {  # the short forms Playbook._rollback_forms accepts
        "description": "auto, a list of steps, or both: {auto: true, steps: [...]}",
        "anyOf": [{"enum": ["auto", "none", False, None]}, steps, {"$ref": "#/$defs/Rollback"}],
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    expanded: dict[str, Any] = _expand(schema)
    return expanded


def _expand(node: Any) -> Any:
    """Every reference to the operation step becomes the choice of the per-type steps."""
    if isinstance(node, dict):
        if node.get("$ref") == _REF:
            return {"oneOf": [{"$ref": f"#/$defs/{_step_name(t)}"} for t in OPTIONS]}
        if "mapping" in node and isinstance(node["mapping"], dict):
            node = {
                **node,
                "mapping": {k: (f"#/$defs/{_step_name(k)}" if v == _REF else v) for k, v in node["mapping"].items()},
            }
        out = {}
        for key, value in node.items():
            if key == "oneOf" and isinstance(value, list):
                flat: list[Any] = []
                for item in value:
                    expanded = _expand(item)
                    flat.extend(expanded["oneOf"] if item == {"$ref": _REF} else [expanded])
                out[key] = flat
            else:
                out[key] = _expand(value)
        return out
    if isinstance(node, list):
        return [_expand(v) for v in node]
    return node
