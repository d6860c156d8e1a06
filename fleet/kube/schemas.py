"""Client-side schema validation of manifests, so that a multi-document apply fails before its first write.

Built-in kinds are checked against the official JSON schemas shipped by ``kubernetes-validate``
(the ``-strict`` variants: unknown fields are errors, as with kubectl's default ``--validate=strict``),
for the Kubernetes minor version the cluster reports on ``/version`` (the newest shipped one not newer
than it; the newest when the version is unknown or newer than every shipped one). Custom resources are
checked against their CRD's ``openAPIV3Schema``, converted to JSON Schema by ``crd_json_schema``.
Kinds with neither (aggregated APIs, CRDs the client may not read) are left to the server.

Compiled validators are cached per process (per version and kind; per CRD schema), and so is each
verdict (per validator and object), so a fan-out of one manifest to many clusters validates it once.
What is not checked here: the server's rules beyond the schema (name formats, immutable fields, CEL
``x-kubernetes-validations``), and formats (``int32``, ``date-time``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from fleet.errors import InputError, Location
from fleet.kube.manifests import Manifest
from fleet.kube.objects import JsonObject, split_api_version

log = logging.getLogger(__name__)

_SCHEMAS = files("kubernetes_validate") / "kubernetes-json-schema"
_MAX_REPORTED = 5
_MAX_VERDICTS = 4096

CRD_KIND = ("apiextensions.k8s.io", "CustomResourceDefinition")
Kind = tuple[str, str]  # (apiVersion, kind)


@dataclass(frozen=True)
class Finding:
    """One schema violation: which document, the field path in it, and what is wrong."""

    manifest: Manifest
    path: str
    problem: str

    def __str__(self) -> str:
        where = self.manifest.location(self.path or None)
        return f"{where}: {self.manifest.describe()}: {self.problem}"


@functools.cache
def shipped_versions() -> tuple[str, ...]:
    """The Kubernetes minor versions whose schemas ``kubernetes-validate`` ships, oldest first."""
    found = {m.group(1) for p in _SCHEMAS.iterdir() if (m := re.fullmatch(r"v(\d+\.\d+)\.\d+-local-strict", p.name))}
    return tuple(sorted(found, key=lambda v: tuple(int(x) for x in v.split("."))))


def schema_version(server_version: str | None) -> str:
    """The shipped schema version for a server's ``gitVersion`` (``v1.32.3-eks-1``): the newest not newer
    than it, the oldest for an older server, the newest when unknown."""
    versions = shipped_versions()
    match = re.match(r"v?(\d+)\.(\d+)", server_version or "")
    if match is None:
        return versions[-1]
    wanted = (int(match.group(1)), int(match.group(2)))
    fitting = [v for v in versions if tuple(int(x) for x in v.split(".")) <= wanted]
    return fitting[-1] if fitting else versions[0]


@functools.cache
def _registry(version: str) -> Registry[Any]:
    text = (_SCHEMAS / f"v{version}.0-local-strict" / "_definitions.json").read_text()
    registry: Registry[Any] = Resource.from_contents(json.loads(text)) @ Registry()
    return registry


@functools.cache
def builtin_validator(version: str, api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    """The compiled validator of a built-in kind in that schema version (``None``: not a built-in kind)."""
    group, gv_version = split_api_version(api_version)
    prefix = f"{group.split('.')[0]}-" if group else ""
    path = _SCHEMAS / f"v{version}.0-local-strict" / f"{kind.lower()}-{prefix}{gv_version}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    # The file name drops the group's domain: make sure this is that kind, not a custom resource alike.
    if api_version not in ((schema.get("properties") or {}).get("apiVersion") or {}).get("enum", ()):
        return None
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


# -- built-in kinds (what a typo is checked against before any cluster is asked) -----------------------


@functools.cache
def builtin_kinds() -> dict[str, frozenset[str]]:
    """The kinds of every built-in API group (``""`` is core) in the oldest and the newest shipped schemas
    (a kind removed since is still served by older clusters). A custom resource can never be in one of
    these groups (CRD groups need a dot, ``*.k8s.io`` ones an approval)."""
    kinds: dict[str, set[str]] = {}
    for version in {shipped_versions()[0], shipped_versions()[-1]}:
        text = (_SCHEMAS / f"v{version}.0-local-strict" / "_definitions.json").read_text()
        for definition in json.loads(text)["$defs"].values():
            for gvk in definition.get("x-kubernetes-group-version-kind") or ():
                kinds.setdefault(gvk["group"], set()).add(gvk["kind"])
    return {group: frozenset(names) for group, names in kinds.items()}


def guess_plural(kind: str) -> str:
    """The resource name Kubernetes gives a kind (``apimachinery``'s ``UnsafeGuessKindToResource``)."""
    lowered = kind.lower()
    if lowered.endswith("s"):
        return lowered + "es"
    if lowered.endswith("y"):
        return lowered[:-1] + "ies"
    return lowered + "s"


def _typo_distance(a: str, b: str) -> int:
    """Edits from ``a`` to ``b``: insertions, deletions, substitutions and swaps of neighbours."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        row = [i]
        for j, cb in enumerate(b, start=1):
            cost = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, prev2[j - 2] + 1)
            row.append(cost)
        prev2, prev = prev, row
    return prev[-1]


def _closest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``word`` is a typo of (at most two edits, words of six letters or more: ``deploymnets``),
    never a custom resource that shares a built-in's stem (``clusters``, ``certificaterequests``)."""
    if len(word) < 6:
        return None
    scored = sorted((_typo_distance(word.lower(), c.lower()), c) for c in candidates)
    return scored[0][1] if scored and scored[0][0] <= 2 else None


def _did_you_mean(suggestion: str | None) -> str:
    return f" (did you mean {suggestion!r}?)" if suggestion else ""


def check_builtin_kind(api_version: str, kind: str, *, location: Location | None = None) -> None:
    """An ``InputError`` for a kind the built-in group of ``api_version`` does not have (``v1``
    ``Namspace``), with the closest built-in kind; other groups are left to discovery (custom kinds)."""
    group = split_api_version(api_version)[0]
    known = builtin_kinds().get(group)
    if known is None or kind in known:
        return
    where = f"apiVersion {api_version}" if group else "the core API (apiVersion v1)"
    raise InputError(
        f"{where} has no kind {kind!r}{_did_you_mean(_closest(kind, sorted(known)))}",
        location=location or Location(field="kind"),
    )


@functools.cache
def _builtin_names() -> dict[str, str]:
    """Every built-in kind, singular and plural as ``fleet get`` accepts them → how the suggestion reads."""
    names: dict[str, str] = {}
    for kinds in builtin_kinds().values():
        for kind in kinds:
            if kind.endswith("List") or kind in ("DeleteOptions", "WatchEvent", "Status", "APIGroup"):
                continue
            names.setdefault(kind.lower(), kind)
            plural = guess_plural(kind)
            names.setdefault(plural, plural)
    return names


def check_resource_name(name: str, *, field: str = "kind") -> None:
    """An ``InputError`` for a near miss of a built-in kind or resource name (``deploymnets``); any
    other name may be a custom resource and is left to discovery."""
    names = _builtin_names()
    if name.lower() in names or f"{name.lower()}s" in names:  # ``endpoint``, ``roles``
        return
    suggestion = _closest(name, sorted(names))
    if suggestion is not None:
        raise InputError(
            f"unknown resource type {name!r}{_did_you_mean(names[suggestion.lower()])}", location=Location(field=field)
        )


# -- CRD schemas (OpenAPI v3, structural) → JSON Schema -----------------------------------------------

_SAME_KEYWORDS = (
    "enum", "pattern", "minimum", "maximum", "multipleOf", "minLength", "maxLength", "minItems",
    "maxItems", "uniqueItems", "minProperties", "maxProperties",
)  # fmt: skip
_OF_KEYWORDS = ("allOf", "anyOf", "oneOf")
_OBJECT_KEYS: JsonObject = {"apiVersion": {}, "kind": {}, "metadata": {}}


def crd_json_schema(openapi: JsonObject, *, root: bool = True) -> JsonObject:
    """A CRD version's ``openAPIV3Schema`` as JSON Schema, read as the API server reads it: ``null`` is
    accepted everywhere (non-nullable nulls are pruned, not rejected), a property with a default is
    never missing, ``x-kubernetes-int-or-string`` and ``x-kubernetes-preserve-unknown-fields`` are
    honoured, and an object's unknown fields are errors (fieldValidation Strict)."""
    out: JsonObject = {key: openapi[key] for key in _SAME_KEYWORDS if key in openapi}
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if openapi.get(key) is True and bound in openapi:  # OpenAPI 3.0: a flag on the bound
            out[key] = out.pop(bound)
    if openapi.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string", "null"]
    elif isinstance(openapi.get("type"), str):
        out["type"] = [openapi["type"], "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    properties = {name: crd_json_schema(sub, root=False) for name, sub in (openapi.get("properties") or {}).items()}
    if root or openapi.get("x-kubernetes-embedded-resource"):
        properties.update(_OBJECT_KEYS)
    if properties:
        out["properties"] = properties
    defaulted = {name for name, sub in (openapi.get("properties") or {}).items() if "default" in sub}
    if required := [name for name in openapi.get("required") or () if name not in defaulted]:
        out["required"] = required
    if isinstance(openapi.get("items"), dict):
        out["items"] = crd_json_schema(openapi["items"], root=False)
    extra = openapi.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = crd_json_schema(extra, root=False)
    elif isinstance(extra, bool):
        out["additionalProperties"] = extra
    elif openapi.get("type") == "object" and not openapi.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    for key in _OF_KEYWORDS:
        if isinstance(openapi.get(key), list):
            out[key] = [crd_json_schema(sub, root=False) for sub in openapi[key]]
    if isinstance(openapi.get("not"), dict):
        out["not"] = crd_json_schema(openapi["not"], root=False)
    return out


_crd_validators: dict[str, jsonschema.Draft202012Validator] = {}
# (validator identity, canonical JSON of the object) → its findings as (field path, problem)
_verdicts: dict[tuple[int, str], tuple[tuple[str, str], ...]] = {}


def crd_validator(openapi: JsonObject) -> jsonschema.Draft202012Validator:
    """The compiled validator of a CRD version's ``openAPIV3Schema`` (cached by its content)."""
    key = json.dumps(openapi, sort_keys=True)
    validator = _crd_validators.get(key)
    if validator is None:
        if len(_crd_validators) >= _MAX_VERDICTS:
            _crd_validators.clear()
            _verdicts.clear()  # they are keyed by validator identity
        validator = _crd_validators[key] = jsonschema.Draft202012Validator(crd_json_schema(openapi))
    return validator


def crd_version_schema(crd: JsonObject, version: str) -> JsonObject | None:
    """The ``openAPIV3Schema`` a CRD object gives ``version`` (``None`` when it has none)."""
    spec = crd.get("spec") or {}
    for entry in spec.get("versions") or []:
        if isinstance(entry, dict) and entry.get("name") == version:
            schema = (entry.get("schema") or {}).get("openAPIV3Schema") or (spec.get("validation") or {}).get(
                "openAPIV3Schema"
            )
            return schema if isinstance(schema, dict) else None
    return None


# -- checking ----------------------------------------------------------------------------------------


def _field_path(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _types(value: Any) -> str:
    names = [value] if isinstance(value, str) else [t for t in value if t != "null"]
    return " or ".join(names)


def _json_type(value: Any) -> str:
    kinds: tuple[tuple[str, type], ...] = (
        ("boolean", bool), ("integer", int), ("number", float), ("string", str), ("object", dict), ("array", list)
    )  # fmt: skip
    return next((name for name, kind in kinds if isinstance(value, kind)), "null")


def _problem(error: ValidationError) -> tuple[list[str | int], str]:
    """The field path and a sentence for one violation."""
    path: list[str | int] = list(error.absolute_path)
    if error.validator == "type":
        shown = json.dumps(error.instance)
        shown = shown if len(shown) <= 40 else shown[:40] + "…"
        return path, f"expected {_types(error.validator_value)}, got {_json_type(error.instance)} {shown}"
    if error.validator == "required" and isinstance(error.instance, dict) and isinstance(error.validator_value, list):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [*path, *missing[:1]], "required field is missing"
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        known = set((error.schema.get("properties") or {}) if isinstance(error.schema, dict) else ())
        unknown = sorted(k for k in error.instance if k not in known)
        return [*path, unknown[0]] if len(unknown) == 1 else path, (
            "unknown field" if len(unknown) == 1 else f"unknown fields {', '.join(unknown)}"
        )
    if error.validator in ("oneOf", "anyOf") and isinstance(error.validator_value, list):
        types = [_types(s["type"]) for s in error.validator_value if isinstance(s, dict) and "type" in s]
        if types:
            return path, f"expected {' or '.join(types)}, got {_json_type(error.instance)} {json.dumps(error.instance)}"
    return path, str(error.message)


def check(manifest: Manifest, validator: jsonschema.Draft202012Validator) -> list[Finding]:
    """Every violation of ``validator``'s schema in ``manifest`` (the verdict is cached per object)."""
    key = (id(validator), json.dumps(manifest.obj, sort_keys=True, default=str))
    verdict = _verdicts.get(key)
    if verdict is None:
        errors = sorted(validator.iter_errors(manifest.obj), key=lambda e: list(map(str, e.absolute_path)))
        problems = [_problem(e) for e in errors]
        verdict = tuple((_field_path(path), text) for path, text in problems)
        if len(_verdicts) >= _MAX_VERDICTS:
            _verdicts.clear()
        _verdicts[key] = verdict
    return [Finding(manifest, path, text) for path, text in verdict]


def raise_findings(findings: Sequence[Finding], *, schema: str) -> None:
    """One ``InputError`` naming the first violation (file, document, field) and listing a few more."""
    if not findings:
        return
    first = findings[0]
    message = f"{first.manifest.describe()}: {first.problem} (checked before applying anything, against {schema})"
    rest = [str(f) for f in findings[1:_MAX_REPORTED]]
    if rest:
        more = len(findings) - 1
        message += f"; {more} more problem{'s' if more > 1 else ''}: " + "; ".join(rest)
        if len(findings) > _MAX_REPORTED:
            message += "; …"
    raise InputError(message, location=first.manifest.location(first.path or None))


def is_crd(m: Manifest) -> bool:
    return (split_api_version(m.api_version)[0], m.kind) == CRD_KIND


def batch_crd(crds: Sequence[Manifest], api_version: str, kind: str) -> Manifest | None:
    """The CRD of the batch that serves ``kind`` in ``api_version``, if any."""
    group, version = split_api_version(api_version)
    for crd in crds:
        spec = crd.obj.get("spec") or {}
        versions = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict)]
        if spec.get("group") == group and (spec.get("names") or {}).get("kind") == kind and version in versions:
            return crd
    return None


def unchecked_kinds(manifests: Sequence[Manifest], *, server_version: str | None = None) -> set[Kind]:
    """The kinds that neither the official schemas nor a CRD of the batch describe (the cluster's CRDs may)."""
    version = schema_version(server_version)
    crds = [m for m in manifests if is_crd(m)]
    return {
        (m.api_version, m.kind)
        for m in manifests
        if builtin_validator(version, m.api_version, m.kind) is None and batch_crd(crds, m.api_version, m.kind) is None
    }


def validate_manifests(
    manifests: Sequence[Manifest],
    *,
    server_version: str | None = None,
    crd_schemas: Mapping[Kind, JsonObject | None] | None = None,
    cluster: str | None = None,
) -> None:
    """Check every manifest against its schema: the official one for built-in kinds (for
    ``server_version``, the version ``cluster`` reported; ``cluster`` None: offline, before any cluster
    is asked), else its CRD's, from the batch or from ``crd_schemas`` (read from the cluster). Raise one
    ``InputError`` for all violations; kinds without a schema are left to the server. Which schemas were
    used is logged (INFO) and named in the error."""
    for m in manifests:
        check_builtin_kind(m.api_version, m.kind, location=m.location("kind"))
    used = schemas_used(server_version, cluster=cluster)
    log.info("checking %d object(s) against %s", len(manifests), used, extra={"cluster": cluster} if cluster else None)
    version = schema_version(server_version)
    crds = [m for m in manifests if is_crd(m)]
    findings: list[Finding] = []
    for m in manifests:
        validator = builtin_validator(version, m.api_version, m.kind)
        if validator is None:
            crd = batch_crd(crds, m.api_version, m.kind)
            schema = (
                crd_version_schema(crd.obj, split_api_version(m.api_version)[1])
                if crd is not None
                else (crd_schemas or {}).get((m.api_version, m.kind))
            )
            validator = crd_validator(schema) if schema is not None else None
        if validator is not None:
            findings.extend(check(m, validator))
    raise_findings(findings, schema=used)


def schemas_used(server_version: str | None, *, cluster: str | None = None) -> str:
    """Which schemas ``validate_manifests`` checks against, as its error says it: those of the version
    ``cluster`` reported on ``/version``, else the newest shipped (offline, or the cluster did not say)."""
    version = schema_version(server_version)
    if server_version is not None:
        return f"the Kubernetes {version} schemas, for the cluster's version {server_version}"
    if cluster is not None:
        return f"the Kubernetes {version} schemas, the newest shipped: cluster {cluster} does not serve /version"
    return f"the Kubernetes {version} schemas, the newest shipped: the cluster's version is not known yet"
