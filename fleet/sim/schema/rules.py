"""The checks an API server makes beyond the schema: names, labels, workload selectors, pod templates,
services, and the fields an update may not change."""

from __future__ import annotations

import json
import re
from typing import Any

from fleet.sim.model import JsonObject, ResourceType
from fleet.sim.schema.causes import Findings, quote

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_RFC1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
# Kinds whose pod template lives at spec.template (CronJob nests one level deeper).
_TEMPLATE_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"})
_SELECTOR_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"})


def check_metadata(obj: JsonObject, rt: ResourceType, found: Findings) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        found.add("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")
        return
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            found.add("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")
    elif isinstance(name, str):
        if rt.kind == "Namespace" and not (_DNS1123_LABEL.match(name) and len(name) <= 63):
            found.add(
                "FieldValueInvalid",
                "metadata.name",
                f"Invalid value: {quote(name)}: {_RFC1123_LABEL_MESSAGE}",
            )
        elif not (_DNS1123_SUBDOMAIN.match(name) and len(name) <= 253):
            found.add(
                "FieldValueInvalid",
                "metadata.name",
                f"Invalid value: {quote(name)}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                "'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
    _check_labels(meta.get("labels"), "metadata.labels", found)


def _check_labels(labels: Any, path: str, found: Findings) -> None:
    if not isinstance(labels, dict):
        return
    for key in labels:
        problem = _qualified_name_problem(key)
        if problem:
            found.add("FieldValueInvalid", path, f"Invalid value: {quote(key)}: {problem}")
    for value in labels.values():
        if isinstance(value, str) and not (len(value) <= 63 and _LABEL_VALUE.match(value)):
            found.add(
                "FieldValueInvalid",
                path,
                f"Invalid value: {quote(value)}: a valid label must be an empty string or consist of alphanumeric "
                "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            )


def _qualified_name_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and not (prefix and len(prefix) <= 253 and _DNS1123_SUBDOMAIN.match(prefix)):
        return (
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
        )
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME_PART.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return None


def _selector_matches(selector: JsonObject, labels: JsonObject) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _check_pod_spec(spec: Any, path: str, kind: str, found: Findings) -> None:
    if not isinstance(spec, dict):
        return
    containers = spec.get("containers")
    if not containers:
        if "containers" in spec:  # the schema's "required" already reported an absent list
            found.add("FieldValueRequired", f"{path}.containers", "Required value")
        return
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group) or ()):
            if not isinstance(container, dict):
                continue
            where = f"{path}.{group}[{index}]"
            name = container.get("name")
            if isinstance(name, str) and name:
                if not (len(name) <= 63 and _DNS1123_LABEL.match(name)):
                    found.add(
                        "FieldValueInvalid", f"{where}.name", f"Invalid value: {quote(name)}: {_RFC1123_LABEL_MESSAGE}"
                    )
                if name in seen:
                    found.add("FieldValueDuplicate", f"{where}.name", f"Duplicate value: {quote(name)}")
                seen.add(name)
            if not container.get("image"):
                found.add("FieldValueRequired", f"{where}.image", "Required value")
    policy = spec.get("restartPolicy")
    if kind in _SELECTOR_KINDS and policy not in (None, "Always"):
        found.add(
            "FieldValueNotSupported",
            f"{path}.restartPolicy",
            f'Unsupported value: {quote(policy)}: supported values: "Always"',
        )
    if kind in ("Job", "CronJob") and policy not in ("OnFailure", "Never"):
        shown = quote(policy) if policy is not None else '""'
        found.add(
            "FieldValueNotSupported" if policy is not None else "FieldValueRequired",
            f"{path}.restartPolicy",
            f'Unsupported value: {shown}: supported values: "OnFailure", "Never"'
            if policy is not None
            else 'Required value: valid values: "OnFailure", "Never"',
        )


def check_workload(obj: JsonObject, rt: ResourceType, found: Findings) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if rt.kind == "Pod":
        _check_pod_spec(spec, "spec", rt.kind, found)
        return
    if rt.kind == "Service":
        headless = spec.get("clusterIP") == "None"
        if not spec.get("ports") and spec.get("type") != "ExternalName" and not headless:
            found.add("FieldValueRequired", "spec.ports", "Required value")
        return
    if rt.kind == "CronJob":
        template = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")) or {}
        _check_pod_spec(template.get("spec"), "spec.jobTemplate.spec.template.spec", rt.kind, found)
        return
    if rt.kind not in _TEMPLATE_KINDS:
        return
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        found.add(
            "FieldValueInvalid", "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"
        )
    template = spec.get("template")
    if isinstance(template, dict):
        _check_pod_spec(template.get("spec"), "spec.template.spec", rt.kind, found)
        _check_labels((template.get("metadata") or {}).get("labels"), "spec.template.metadata.labels", found)
    if rt.kind not in _SELECTOR_KINDS:
        return
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        found.add("FieldValueRequired", "spec.selector", "Required value")
        return
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        message = f"Invalid value: {_go_map(selector)}: empty selector is invalid for deployment"
        found.add("FieldValueInvalid", "spec.selector", message)
        return
    labels = ((template or {}).get("metadata") or {}).get("labels") or {}
    if not _selector_matches(selector, labels):
        found.add(
            "FieldValueInvalid",
            "spec.template.metadata.labels",
            f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
        )


def _go_map(value: JsonObject) -> str:
    inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in value.items())
    return f"map[string]string{{{inner}}}"


# What a pod update may change in spec; everything else is fixed once the pod exists.
_POD_MUTABLE = frozenset({"activeDeadlineSeconds", "terminationGracePeriodSeconds", "tolerations"})


def _without_images(containers: Any) -> Any:
    if not isinstance(containers, list):
        return containers
    return [{k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c for c in containers]


def _pod_fixed_part(spec: JsonObject) -> JsonObject:
    fixed = {k: v for k, v in spec.items() if k not in _POD_MUTABLE}
    for group in ("containers", "initContainers"):
        if group in fixed:
            fixed[group] = _without_images(fixed[group])
    return fixed


def check_update(old: JsonObject, new: JsonObject, rt: ResourceType, found: Findings) -> None:
    """The fields an update may not change, as the API server guards them."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if rt.kind in _SELECTOR_KINDS or rt.kind == "Job":
        before, after = old_spec.get("selector"), new_spec.get("selector")
        if before is not None and after is not None and before != after:
            found.add("FieldValueInvalid", "spec.selector", f"Invalid value: {json.dumps(after)}: field is immutable")
    if rt.kind == "Job":
        before, after = old_spec.get("template"), new_spec.get("template")
        if before is not None and after is not None and _job_template(before) != _job_template(after):
            found.add("FieldValueInvalid", "spec.template", f"Invalid value: {json.dumps(after)}: field is immutable")
    pod_spec_changed = rt.kind == "Pod" and _pod_fixed_part(old_spec) != _pod_fixed_part(new_spec)
    if pod_spec_changed:
        found.add(
            "FieldValueForbidden",
            "spec",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
            "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
            "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
            "previously negative)",
        )
    if rt.kind in ("ConfigMap", "Secret") and old.get("immutable") is True:
        for field in ("data", "binaryData", "stringData"):
            if old.get(field) != new.get(field) and not (field == "stringData" and new.get(field) is None):
                found.add("FieldValueForbidden", field, "Forbidden: field is immutable when `immutable` is set")
        if new.get("immutable") is not True:
            found.add("FieldValueForbidden", "immutable", "Forbidden: field is immutable when `immutable` is set")


def _job_template(template: JsonObject) -> JsonObject:
    # The server labels a Job's template with its controller uid; that is not the client's change.
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if "controller-uid" not in k and k != "job-name"}
    return {**template, "metadata": {**meta, "labels": labels}}
