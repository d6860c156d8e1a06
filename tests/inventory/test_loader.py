"""Inventory files: defaults, combining files, and bad inventories rejected with file, line and field."""

import json
import textwrap

import pytest

from fleet.errors import InputError
from fleet.inventory import load_inventory

GOOD = """\
defaults:
  tenant: shared
  labels: {env: prod, tier: silver}
  auth: {type: eks, region: eu-west-1}
clusters:
  - name: eu-1
    region: eu-west-1
    labels: {tier: gold}
    connection:
      kubeconfig: file:kubeconfigs/eu-1.yaml
      context: eu-1
  - name: eu-2
    tenant: acme
    connection:
      masterUrl: https://10.0.0.1:6443
      caCertFile: ca.pem
      token: vault:kv/tenants/acme#token
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_are_inherited(tmp_path):
    inventory = load_inventory([write(tmp_path, "a.yaml", GOOD)])
    eu1, eu2 = inventory.clusters
    assert eu1.labels == {"env": "prod", "tier": "gold"}
    assert eu1.tenant == "shared"
    assert eu2.tenant == "acme"
    assert eu1.auth is not None
    assert eu1.auth.type == "eks"
    assert eu1.origin == f"{tmp_path / 'a.yaml'}:6"
    assert eu1.base_dir == tmp_path
    assert eu1.describe_credentials() == "file:kubeconfigs/eu-1.yaml context eu-1; auth eks"
    assert eu2.describe_credentials() == "https://10.0.0.1:6443 (token vault:kv/tenants/acme#token); auth eks"


def test_several_files_and_directories_combine(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yml", "clusters:\n  - name: us-1\n    connection: {inCluster: true}\n")
    (tmp_path / "notes.txt").write_text("not an inventory")
    inventory = load_inventory([tmp_path])
    assert [c.name for c in inventory.clusters] == ["eu-1", "eu-2", "us-1"]
    assert inventory.clusters[2].tenant is None  # defaults belong to their own file


BAD = [
    (
        "unknown key",
        "clusters:\n  - name: a\n    conection: {inCluster: true}\n",
        3,
        "clusters[0].conection",
        "unknown key",
    ),
    (
        "unknown nested key",
        "clusters:\n  - name: a\n    connection:\n      inCluster: true\n      tokn: x\n",
        5,
        "clusters[0].connection.tokn",
        "unknown key",
    ),
    (
        "bad reference",
        "clusters:\n  - name: a\n    connection:\n      masterUrl: https://x\n      token: vault:kv#t\n",
        5,
        "clusters[0].connection.token",
        "expected vault:<mount>/<path>#<key>",
    ),
    (
        "two connection forms",
        "clusters:\n  - name: a\n    connection:\n      inCluster: true\n      masterUrl: https://x\n",
        3,
        "clusters[0].connection",
        "exactly one of kubeconfig, masterUrl or inCluster",
    ),
    ("missing name", "clusters:\n  - connection: {inCluster: true}\n", 2, "clusters[0].name", "key is missing"),
    ("bad name", "clusters:\n  - name: 'a b'\n    connection: {inCluster: true}\n", 2, "clusters[0].name", "pattern"),
    (
        "unknown auth type",
        "clusters:\n  - name: a\n    connection: {inCluster: true}\n    auth: {type: azure}\n",
        4,
        "clusters[0].auth",
        "does not match any of the expected tags",
    ),
    (
        "eks auth typo",
        "clusters:\n  - name: a\n    connection: {inCluster: true}\n    auth:\n      type: eks\n      rolearn: x\n",
        6,
        "clusters[0].auth.eks.rolearn",
        "unknown key",
    ),
    ("no connection", "clusters:\n  - name: a\n", 2, "clusters[0].name", "has no connection"),
    ("duplicate key", "clusters:\n  - name: a\n    name: b\n", 3, "clusters[0].name", "appears twice"),
    ("not a mapping", "- a\n- b\n", 1, None, "is a mapping"),
    ("yaml syntax", "clusters:\n  - name: [a\n", 3, None, "invalid YAML"),
    (
        "duplicate names in one file",
        "clusters:\n  - name: a\n    connection: {inCluster: true}\n  - name: a\n    connection: {inCluster: true}\n",
        4,
        "clusters[1].name",
        "'a' is defined twice",
    ),
    (
        "bad kubeconfig reference",
        "clusters:\n  - name: a\n    connection:\n      kubeconfig: vault:kv/tenants/acme\n",
        4,
        "clusters[0].connection.kubeconfig",
        "expected vault:<mount>/<path>#<key>",
    ),
    (
        "bad env reference",
        "clusters:\n  - name: a\n    connection:\n      masterUrl: https://x\n      password: env:1BAD\n"
        "      username: u\n",
        5,
        "clusters[0].connection.password",
        "expected env:<VARIABLE_NAME>",
    ),
    (
        "bad reference option",
        "defaults:\n  connection:\n    kubeconfig: aws-sm:tenants/acme?versoin=2\n",
        3,
        "defaults.connection.kubeconfig",
        "the only option is ?version=<version>",
    ),
    ("bad api token", "sources:\n  - type: api\n    url: https://x\n    token: plain\n    template: x\n", 4,
     "sources[0].api.token", "must be a secret reference"),
    (
        "label value with a space and a '!'",
        "clusters:\n  - name: a\n    connection: {inCluster: true}\n    labels:\n      tier: not valid!\n",
        5,
        "clusters[0].labels.tier",
        "'not valid!' is not a valid label value (up to 63 characters",
    ),
    ("label value of 64 characters", f"clusters:\n  - name: a\n    connection: {{inCluster: true}}\n"
     f"    labels: {{tier: {'x' * 64}}}\n", 4, "clusters[0].labels.tier", "is not a valid label value"),
    ("label value ending in '-'", "defaults:\n  labels:\n    env: prod-\n", 3, "defaults.labels.env",
     "'prod-' is not a valid label value"),
    ("label key with a space", "clusters:\n  - name: a\n    connection: {inCluster: true}\n    labels:\n"
     "      team: x\n      'cost center': y\n", 6, "clusters[0].labels.cost center",
     "'cost center' is not a valid label key (an optional DNS prefix"),
    ("label key with an upper-case prefix", "clusters:\n  - name: a\n    connection: {inCluster: true}\n"
     "    labels: {Example.com/tier: gold}\n", 4, "clusters[0].labels.Example.com/tier", "not a valid label key"),
    ("source label value", "sources:\n  - type: kubeconfig\n    path: k.yaml\n    labels: {env: a/b}\n", 4,
     "sources[0].kubeconfig.labels.env", "'a/b' is not a valid label value"),
]


@pytest.mark.parametrize(
    "labels", [{"env": ""}, {"example.com/tier": "gold"}, {"a" * 63: "b" * 63}, {"A_b.c-d": "X.y_z-1"}]
)
def test_valid_kubernetes_labels_are_accepted(tmp_path, labels):
    path = tmp_path / "ok.yaml"
    path.write_text(f"clusters:\n  - name: a\n    connection: {{inCluster: true}}\n    labels: {json.dumps(labels)}\n")
    (cluster,) = load_inventory([path]).clusters
    assert cluster.labels == labels


@pytest.mark.parametrize(("case", "text", "line", "field", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_inventories_name_file_line_and_field(tmp_path, case, text, line, field, message):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(InputError) as caught:
        load_inventory([path])
    error = caught.value
    assert error.location.file == str(path)
    assert error.location.line == line
    assert error.location.field == field
    assert message in error.message
    assert error.exit_code == 2


def test_duplicate_names_across_files(tmp_path):
    a = write(tmp_path, "a.yaml", "clusters:\n  - name: x\n    connection: {inCluster: true}\n")
    b = write(tmp_path, "b.yaml", "\nclusters:\n  - name: y\n    connection: {inCluster: true}\n"
              "  - name: x\n    connection: {inCluster: true}\n")
    with pytest.raises(InputError) as caught:
        load_inventory([a, b])
    assert caught.value.location.file == str(b)
    assert caught.value.location.line == 5
    assert caught.value.location.field == "clusters[1].name"
    assert f"defined twice: at {a}:2 and at {b}:5" in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_inventory([tmp_path / "nope.yaml"])
