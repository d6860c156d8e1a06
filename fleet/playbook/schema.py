"""The playbook's JSON schema for editors: the models' schema, with each operation step type drawn with
its own options beside ``id``/``type`` (as users write them) instead of the internal ``options`` map;
any option may also be a template (rendered, then validated, when the step runs).
Published as ``playbooks/playbook.schema.json`` (a test keeps the file equal to this)."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel

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
            "properties": {
                **common,
                "type": {"const": step_type},
                **{k: _templatable(v) for k, v in _with_aliases(model, options.get("properties", {})).items()},
            },
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


#: An option's value may be a template: it is rendered when the step runs, and only then validated.
TEMPLATE = {"type": "string", "pattern": r"\{\{|\{%", "description": "a template, rendered when the step runs"}


def _with_aliases(model: type[BaseModel], properties: dict[str, Any]) -> dict[str, Any]:
    """``properties`` plus the other names an option accepts (``AliasChoices``: restart's
    ``waitUntilReady`` beside ``timeout``, apply's ``manifests`` beside ``manifest``)."""
    out = dict(properties)
    for field in model.model_fields.values():
        if isinstance(field.validation_alias, AliasChoices):
            names = [c for c in field.validation_alias.choices if isinstance(c, str)]
            shown = next((n for n in names if n in properties), None)
            for name in names:
                if shown is not None:
                    out.setdefault(name, properties[shown])
    return out


def _templatable(prop: dict[str, Any]) -> dict[str, Any]:
    """An option's schema that also accepts a template (a plain string option accepts one already)."""
    if prop.get("type") == "string" and not {"pattern", "enum", "const"} & prop.keys():
        return prop
    outer: dict[str, Any] = {k: prop[k] for k in ("title", "description", "default") if k in prop}
    inner = {k: v for k, v in prop.items() if k not in outer}
    return {**outer, "anyOf": [inner, TEMPLATE]}


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
