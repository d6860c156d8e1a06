"""Client-side schema validation (``fleet.kube.schemas``): pure, table-driven, no cluster."""

from __future__ import annotations

import pytest

from fleet.errors import InputError
from fleet.kube.manifests import load_manifests
from fleet.kube.schemas import (
    builtin_validator,
    check,
    crd_json_schema,
    crd_validator,
    schema_version,
    shipped_versions,
    validate_manifests,
)

NEWEST = shipped_versions()[-1]
OLDEST = shipped_versions()[0]


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("v1.32.3-eks-4b3b4c0", "1.32"),
        ("v1.30.0", "1.30"),
        ("1.31", "1.31"),
        ("v1.20.15", OLDEST),  # older than every shipped schema: the oldest
        ("v1.99.0", NEWEST),  # newer: the newest
        (None, NEWEST),
        ("not a version", NEWEST),
    ],
)
def test_schema_version_is_the_newest_not_newer_than_the_server(server, expected):
    assert schema_version(server) == expected


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, labels: {{app: web}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: main
          image: nginx
          resources: {{limits: {{cpu: {cpu}, memory: 64Mi}}}}
          ports: [{{containerPort: 80, name: http}}]
"""


def _deployment(replicas: object = 2, cpu: object = "0.5") -> str:
    return DEPLOYMENT.format(replicas=replicas, cpu=cpu)


SERVICE = """
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: {port}, targetPort: {target}}}]
"""

FINDINGS = [
    ("replicas as a string", _deployment(replicas='"three"'), "spec.replicas", 'expected integer, got string "three"'),
    (
        "missing required field",
        _deployment().replace("  selector: {matchLabels: {app: web}}\n", ""),
        "spec.selector",
        "required field is missing",
    ),
    ("unknown field", _deployment().replace("replicas: 2", "replica: 2"), "spec.replica", "unknown field"),
    (
        "unknown field in a container",
        _deployment().replace("image: nginx", "image: nginx\n          imagePullPolicyy: Always"),
        "spec.template.spec.containers[0].imagePullPolicyy",
        "unknown field",
    ),
    ("a quantity of the wrong type", _deployment(cpu="[1]"), "spec.template.spec.containers[0].resources.limits.cpu",
     "expected string or number, got array [1]"),
    ("a port as a word", SERVICE.format(port="eighty", target=80), "spec.ports[0].port", "expected integer"),
    ("int-or-string as an object", SERVICE.format(port=80, target="{a: 1}"), "spec.ports[0].targetPort",
     "expected string or integer, got object"),
    ("ConfigMap data must be strings", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 1}\n",
     "data.a", "expected string, got integer 1"),
    ("a label value must be a string", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {v: 2}}\n",
     "metadata.labels.v", "expected string"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "path", "problem"), [f[1:] for f in FINDINGS], ids=[f[0] for f in FINDINGS])
def test_builtin_kinds_are_checked_against_the_official_schema(text, path, problem):
    (manifest,) = load_manifests(text, source="app.yaml")
    validator = builtin_validator(NEWEST, manifest.api_version, manifest.kind)
    assert validator is not None
    findings = check(manifest, validator)
    assert [f.path for f in findings] == [path]
    assert problem in findings[0].problem


VALID = [
    ("deployment", _deployment()),
    ("integer cpu", _deployment(cpu=1)),
    ("named target port", SERVICE.format(port=80, target="http")),
    ("numeric target port", SERVICE.format(port=80, target=8080)),
    ("namespace", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"),
    ("null creationTimestamp", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, creationTimestamp: null}\n"),
    ("date-like annotation", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: {at: 2024-01-01}}\n"),
]


@pytest.mark.parametrize("text", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_manifests_pass(text):
    validate_manifests(load_manifests(text))


def test_a_custom_resource_lookalike_is_not_a_builtin():
    assert builtin_validator(NEWEST, "apps.example.com/v1", "Deployment") is None
    assert builtin_validator(NEWEST, "apps/v1", "Gizmo") is None
    assert builtin_validator(NEWEST, "apps/v1", "Deployment") is builtin_validator(NEWEST, "apps/v1", "Deployment")


def test_one_error_names_file_document_object_and_field_and_lists_the_others():
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\n"
        + _deployment(replicas='"three"')
        + "---\n"
        + SERVICE.format(port="eighty", target=80)
    )
    with pytest.raises(InputError) as failed:
        validate_manifests(load_manifests(text, source="release.yaml"), server_version="v1.32.1")
    message = str(failed.value)
    assert message.startswith("release.yaml:6: document 2: spec.replicas: Deployment web: expected integer")
    assert "Kubernetes 1.32 schemas" in message
    assert "1 more problem: release.yaml:22: document 3: spec.ports[0].port: Service web: expected integer" in message
    assert failed.value.location.field == "document 2: spec.replicas"


WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.fleet.dev}
spec:
  group: example.fleet.dev
  scope: Namespaced
  names: {plural: widgets, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size, color]
              properties:
                size: {type: integer, minimum: 1}
                color: {type: string, enum: [red, blue], default: red}
                port: {x-kubernetes-int-or-string: true}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
                note: {type: string, nullable: true}
                ratio: {type: number, minimum: 0, exclusiveMinimum: true}
                template: {type: object, x-kubernetes-embedded-resource: true, properties: {spec: {type: object}}}
"""

WIDGETS = [
    ("valid", "spec: {size: 3, port: http, extra: {any: [thing]}, note: null}", None, None),
    ("int-or-string", "spec: {size: 3, port: 8080}", None, None),
    ("defaulted required field may be missing", "spec: {size: 1}", None, None),
    ("embedded resource keeps its own keys", "spec: {size: 1, template: {apiVersion: v1, kind: Pod, spec: {}}}",
     None, None),
    ("wrong type", "spec: {size: big}", "spec.size", "expected integer, got string"),
    ("below minimum", "spec: {size: 0}", "spec.size", "less than the minimum"),
    ("exclusive minimum", "spec: {size: 1, ratio: 0}", "spec.ratio", "less than or equal to the minimum"),
    ("not in enum", "spec: {size: 1, color: green}", "spec.color", "is not one of"),
    ("missing required", "spec: {color: red}", "spec.size", "required field is missing"),
    ("unknown field", "spec: {size: 1, weight: 2}", "spec.weight", "unknown field"),
    ("unknown top-level field", "spec: {size: 1}\nextra: 1", "extra", "unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "path", "problem"), [w[1:] for w in WIDGETS], ids=[w[0] for w in WIDGETS])
def test_custom_resources_are_checked_against_their_crd_in_the_batch(spec, path, problem):
    text = WIDGET_CRD + "---\napiVersion: example.fleet.dev/v1\nkind: Widget\nmetadata: {name: w}\n" + spec
    manifests = load_manifests(text, source="widgets.yaml")
    if path is None:
        validate_manifests(manifests)
        return
    with pytest.raises(InputError) as failed:
        validate_manifests(manifests)
    assert failed.value.location.field == f"document 2: {path}"
    assert problem in failed.value.message
    assert "Widget w" in failed.value.message


def test_crd_schemas_from_the_cluster_are_used_and_compiled_once():
    (crd,) = load_manifests(WIDGET_CRD)
    schema = crd.obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    widget = load_manifests("apiVersion: example.fleet.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: x}\n")
    validate_manifests(widget)  # no schema known: left to the server
    with pytest.raises(InputError, match=r"document 1: spec.size"):
        validate_manifests(widget, crd_schemas={("example.fleet.dev/v1", "Widget"): schema})
    assert crd_validator(schema) is crd_validator(dict(schema))


@pytest.mark.parametrize(
    ("openapi", "expected"),
    [
        ({"type": "string"}, {"type": ["string", "null"]}),
        ({"x-kubernetes-int-or-string": True}, {"type": ["integer", "string", "null"]}),
        ({"type": "integer", "minimum": 0, "exclusiveMinimum": True},
         {"type": ["integer", "null"], "exclusiveMinimum": 0}),
        ({"type": "string", "enum": ["a"]}, {"type": ["string", "null"], "enum": ["a", None]}),
        ({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, {"type": ["object", "null"]}),
        ({"type": "object", "additionalProperties": {"type": "string"}},
         {"type": ["object", "null"], "additionalProperties": {"type": ["string", "null"]}}),
        ({"type": "object", "properties": {"a": {"type": "string", "default": "x"}}, "required": ["a"]},
         {"type": ["object", "null"], "properties": {"a": {"type": ["string", "null"]}},
          "additionalProperties": False}),
    ],
)  # fmt: skip
def test_crd_schema_conversion(openapi, expected):
    assert crd_json_schema(openapi, root=False) == expected
