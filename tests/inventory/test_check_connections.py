"""``check_connections``: every selected cluster's connection is built as a run would build it, before
anything is written, without contacting a cluster or a secret store. A kubeconfig (a file, an ``env:``
or ``file:`` secret, inline) that cannot be read or parsed, a context, cluster or user it lacks, a server
URL that is not one, certificate data that is not base64: an input error at the inventory's file, line
and connection field, naming the cluster. A ``vault:`` or ``aws-sm:`` reference is left to the run."""

from __future__ import annotations

import textwrap

import pytest
import trio
import yaml

from fleet.errors import InputError
from fleet.inventory import load_inventory
from fleet.inventory.connection import check_connections

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "a",
    "contexts": [{"name": "a", "context": {"cluster": "a", "user": "a"}}],
    "clusters": [{"name": "a", "cluster": {"server": "https://10.0.0.1:6443"}}],
    "users": [{"name": "a", "user": {"token": "s3cr3t-token"}}],
}


def _kubeconfig(**cluster: object) -> str:
    doc = yaml.safe_load(yaml.safe_dump(KUBECONFIG))
    doc["clusters"][0]["cluster"].update(cluster)
    return yaml.safe_dump(doc)


def _check(tmp_path, inventory: str) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(textwrap.dedent(inventory))
    trio.run(check_connections, load_inventory([path]).clusters)


@pytest.mark.parametrize(
    ("kubeconfig", "connection", "line", "field", "message"),
    [
        ("clusters: [x\n", "{kubeconfig: file:kc.yaml}", 5, "clusters[1].connection.kubeconfig",
         "cluster bad: the kubeconfig from file:kc.yaml is not valid YAML"),
        ("- a list\n", "{kubeconfig: file:kc.yaml}", 5, "clusters[1].connection.kubeconfig",
         "is not a kubeconfig (expected a mapping)"),
        (None, "{kubeconfig: file:gone.yaml}", 5, "clusters[1].connection.kubeconfig",
         "cluster bad: secret file:gone.yaml: cannot read"),
        (None, "{kubeconfig: env:FLEET_TEST_CHECK_UNSET}", 5, "clusters[1].connection.kubeconfig",
         "secret env:FLEET_TEST_CHECK_UNSET: the environment variable FLEET_TEST_CHECK_UNSET is not set"),
        (yaml.safe_dump(KUBECONFIG), "{kubeconfig: file:kc.yaml, context: b}", 5,
         "clusters[1].connection.context", "has no context named 'b'"),
        (yaml.safe_dump({**KUBECONFIG, "current-context": None}), "{kubeconfig: file:kc.yaml}", 5,
         "clusters[1].connection.kubeconfig", "has no current-context; set connection.context"),
        (yaml.safe_dump({**KUBECONFIG, "users": []}), "{kubeconfig: file:kc.yaml}", 5,
         "clusters[1].connection.kubeconfig", "has no user named 'a'"),
        (_kubeconfig(server="10.0.0.1:6443"), "{kubeconfig: file:kc.yaml}", 5, "clusters[1].connection.kubeconfig",
         "the server URL '10.0.0.1:6443' is not an https:// (or http://) URL with a host"),
        (_kubeconfig(server="https://:6443"), "{kubeconfig: file:kc.yaml}", 5, "clusters[1].connection.kubeconfig",
         "the server URL 'https://:6443' is not"),
        (_kubeconfig(server=None), "{kubeconfig: file:kc.yaml}", 5, "clusters[1].connection.kubeconfig",
         "the connection has no server URL"),
        (_kubeconfig(**{"certificate-authority-data": "abc"}), "{kubeconfig: file:kc.yaml}", 5,
         "clusters[1].connection.kubeconfig", "its cluster certificate-authority-data is not base64"),
        (_kubeconfig(**{"certificate-authority": "no-ca.pem"}), "{kubeconfig: file:kc.yaml}", 5,
         "clusters[1].connection.kubeconfig", "cannot read the certificate authority"),
        (None, "{masterUrl: 'https://10.0.0.1:70000', token: t}", 5, "clusters[1].connection.masterUrl",
         "the server URL 'https://10.0.0.1:70000' is not"),
        (None, "{masterUrl: 'ftp://10.0.0.1', token: t}", 5, "clusters[1].connection.masterUrl", "is not an https://"),
        (None, "{masterUrl: 'https://10.0.0.1', caCertFile: no-ca.pem}", 5, "clusters[1].connection.caCertFile",
         "cannot read the CA file"),
        (None, "{masterUrl: 'https://10.0.0.1', clientCertData: 'abc', clientKeyData: 'abcd'}", 5,
         "clusters[1].connection.clientCertData", "clientCertData is not base64"),
    ],
)  # fmt: skip
def test_a_connection_that_cannot_be_built_is_an_input_error_at_its_field(
    tmp_path, kubeconfig, connection, line, field, message
):
    if kubeconfig is not None:
        (tmp_path / "kc.yaml").write_text(kubeconfig)
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(KUBECONFIG))
    with pytest.raises(InputError) as caught:
        _check(tmp_path, f"""\
            clusters:
              - name: good
                connection: {{kubeconfig: file:good.yaml}}
              - name: bad
                connection: {connection}
            """)  # fmt: skip
    error = caught.value
    assert (error.location.file, error.location.line, error.location.field) == (str(tmp_path / "inv.yaml"), line, field)
    assert message in error.message
    assert error.message.startswith("cluster bad: ")
    assert error.exit_code == 2
    assert "s3cr3t-token" not in str(error)


def test_a_connection_from_the_defaults_is_named_where_the_defaults_give_it(tmp_path):
    with pytest.raises(InputError) as caught:
        _check(tmp_path, """\
            defaults:
              connection:
                kubeconfig: env:FLEET_TEST_CHECK_UNSET
            clusters:
              - name: a
            """)  # fmt: skip
    assert (caught.value.location.line, caught.value.location.field) == (3, "defaults.connection.kubeconfig")
    assert caught.value.message.startswith("cluster a: secret env:FLEET_TEST_CHECK_UNSET:")


def test_good_connections_and_store_references_pass_without_contacting_anything(tmp_path, monkeypatch):
    (tmp_path / "kc.yaml").write_text(yaml.safe_dump(KUBECONFIG))
    monkeypatch.setenv("FLEET_TEST_CHECK_KUBECONFIG", yaml.safe_dump(KUBECONFIG))
    _check(tmp_path, f"""\
        secrets:
          vault: {{address: "http://127.0.0.1:1", auth: {{method: token, token: t}}}}
        clusters:
          - {{name: file, connection: {{kubeconfig: file:kc.yaml}}}}
          - {{name: env, connection: {{kubeconfig: env:FLEET_TEST_CHECK_KUBECONFIG, context: a}}}}
          - name: inline
            connection: {{kubeconfig: {yaml.safe_dump(KUBECONFIG, default_flow_style=True).strip()}}}
          - name: fields
            connection: {{masterUrl: "https://[fd00::1]:6443", token: env:FLEET_TEST_CHECK_KUBECONFIG}}
          - {{name: vault, connection: {{kubeconfig: "vault:secret/nowhere#kubeconfig"}}}}
          - {{name: vault-token, connection: {{masterUrl: "https://10.0.0.1", token: "vault:secret/t#token"}}}}
        """)  # fmt: skip
