"""``fleet rehearse``: a playbook run on a simulated copy of the selected clusters, with faults.

The rehearsals run ``fleet`` as a user does (a subprocess with its own journal). The inventory of most of
them is ``inventories/examples/tenants.yaml``, whose connections (Vault, AWS Secrets Manager, EKS, GKE, an
SSO command, in-cluster) resolve nowhere here: a rehearsal that tried one would fail that cluster.
``--copy-from-live`` reads the cluster under test (a simulated one, or ``FLEET_TEST_KUBECONFIG``'s).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import trio
import yaml
from typer.testing import CliRunner

from fleet.cli.app import app
from fleet.engine.fanout import inventory_selection
from fleet.engine.rehearse import FAULT_KINDS, Rehearsal, StandInSecrets
from fleet.errors import ApiError
from fleet.kube import KubeClient
from fleet.redaction import redact
from fleet.secrets import SecretError
from fleet.settings import FleetSettings, RetrySettings
from fleet.sim import Faults, SimFleet
from tests.engine.conftest import PLAYBOOKS, Fleet, inventory, report

ROOT = Path(__file__).resolve().parents[2]
RELEASE = str(PLAYBOOKS / "release.yaml")
TENANTS = str(ROOT / "inventories" / "examples" / "tenants.yaml")
TENANT_CLUSTERS = ["acme-eu-1", "globex-eu-1", "initech-eu-2", "umbrella-prod", "hooli-eu-west1", "piedpiper-1", "mgmt"]


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(tmp_path)


def _rehearsal(result) -> dict:
    assert "Traceback" not in result.stderr, result.stderr
    doc = report(result)
    doc["outcomes"] = {c["cluster"]: c["outcome"] for c in doc["clusters"]}
    doc["effects"] = {e["cluster"]: e for e in doc["rehearsal"]["faults"]}
    return doc


# -- the acceptance: one cluster's API down fails that cluster alone ---------------------------------


def test_a_release_rehearsed_with_one_cluster_down_fails_that_cluster_alone(fleet):
    result = fleet("rehearse", RELEASE, "-i", TENANTS, "--fault", "globex-eu-1:down", "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr  # as `fleet run` with a cluster failing
    doc = _rehearsal(result)
    assert doc["outcomes"] == {n: "failed" if n == "globex-eu-1" else "succeeded" for n in TENANT_CLUSTERS}
    failed = next(c for c in doc["clusters"] if c["cluster"] == "globex-eu-1")
    assert "connection refused" in failed["error"]
    assert doc["effects"]["globex-eu-1"]["effect"] == "refused every connection: no request reached the API"
    assert doc["status"] == "failed"
    assert "nothing is sent to the real clusters" in result.stderr
    assert "7 clusters: 6 succeeded, 1 failed (globex-eu-1)" in result.stderr


def test_the_table_report_is_a_runs_followed_by_what_the_faults_did(fleet):
    result = fleet("rehearse", RELEASE, "-i", TENANTS, "--limit", "acme-*,globex-*", "--fault", "globex-eu-1:down")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert out.index("CLUSTER") < out.index("2 clusters: 1 succeeded, 1 failed (globex-eu-1)") < out.index("faults")
    assert "globex-eu-1 │ down" in out
    assert "refused every connection" in out


@pytest.mark.sim_only
def test_fleet_run_gives_the_same_exit_code_and_outcomes_for_a_cluster_that_is_down(fleet, tmp_path):
    with SimFleet(3, out_dir=tmp_path / "live") as live:
        inv = str(inventory(live, tmp_path / "inventory.yaml"))
        live["sim-2"].set_faults(Faults(down=True))
        ran = fleet("run", RELEASE, "-i", inv, "--set", "namespace=real", "-o", "json")
        for cluster in live:
            cluster.clear_requests()
        rehearsed = fleet("rehearse", RELEASE, "-i", inv, "--fault", "sim-2:down", "-o", "json")
        assert [r for c in live for r in c.requests()] == []  # the live clusters were not contacted
    assert ran.returncode == rehearsed.returncode == 1, ran.stderr + rehearsed.stderr
    ran_outcomes = {c["cluster"]: c["outcome"] for c in report(ran)["clusters"]}
    assert (
        ran_outcomes
        == _rehearsal(rehearsed)["outcomes"]
        == {
            "sim-0": "succeeded",
            "sim-1": "succeeded",
            "sim-2": "failed",
        }
    )


# -- the other fault kinds, and what each did -----------------------------------------------------------


def test_slow_errors_and_notready_each_show_what_they_hit(fleet):
    result = fleet(
        "rehearse",
        RELEASE,
        "-i",
        TENANTS,
        "--limit",
        "acme-*,initech-*,hooli-*,mgmt",
        "--fault",
        "acme-eu-1:slow=0.05",
        "--fault",
        "initech-eu-2:errors=0.2",
        "--fault",
        "hooli-eu-west1:throttle=0.1",
        "--fault",
        "mgmt:notready",
        "--seed",
        "7",
        "--set",
        "wait=PT4S",
        "-o",
        "json",
        FLEET_RETRY_ATTEMPTS="8",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    doc = _rehearsal(result)
    # transient errors and throttling are retried; a Deployment that never becomes ready is rolled back
    assert doc["outcomes"] == {
        "acme-eu-1": "succeeded",
        "initech-eu-2": "succeeded",
        "hooli-eu-west1": "succeeded",
        "mgmt": "rolled_back",
    }
    assert doc["rehearsal"]["seed"] == 7
    effects = {c: e["effect"] for c, e in doc["effects"].items()}
    assert re.fullmatch(r"delayed \d+ of \d+ requests by 0.05 s", effects["acme-eu-1"])
    assert re.match(r"[1-9]\d* of \d+ requests answered (500|503|500/503): (GET|PATCH|POST) /", effects["initech-eu-2"])
    assert re.match(r"[1-9]\d* of \d+ requests answered 429: (GET|PATCH|POST) /", effects["hooli-eu-west1"])
    assert effects["mgmt"].startswith("held 2 pod(s) unready: shop/web-")
    mgmt = next(c for c in doc["clusters"] if c["cluster"] == "mgmt")
    assert mgmt["failedStep"] == "app"
    assert "Deployment shop/web" in mgmt["error"]


def test_the_same_seed_draws_the_same_faults():
    def statuses(seed: int) -> list[int]:
        names = ["a-1", "b-1"]
        with SimFleet(names=names, seed=seed, services=False) as sim:
            sim["b-1"].set_faults(Faults(error_rate=0.5))
            settings = FleetSettings(retry=RetrySettings(attempts=1))
            with KubeClient.from_kubeconfig(sim["b-1"].kubeconfig_path, settings=settings) as client:
                out = []
                for _ in range(30):
                    try:
                        trio.run(client.request, "GET", "/api/v1/namespaces")
                        out.append(200)
                    except ApiError as e:
                        out.append(e.code)
            assert [c.name for c in sim] == names
            return out

    first, again, other = (statuses(s) for s in (11, 11, 12))
    assert first == again
    assert first != other
    assert {500, 503} & set(first)
    assert 200 in first


# -- the mirror -----------------------------------------------------------------------------------------


def test_the_simulated_fleet_has_the_selection_s_names_and_inventory_entries(tmp_path):
    targets, _ = trio.run(lambda: inventory_selection([Path(TENANTS)], select="env=prod"))
    with Rehearsal(targets, seed=1, out_dir=tmp_path / "sim") as rehearsal:
        assert [c.name for c in rehearsal.sim] == [t.name for t in targets] == TENANT_CLUSTERS
        assert [t.cluster for t in rehearsal.targets] == [t.cluster for t in targets]  # tenant, region, labels
        client = trio.run(rehearsal.targets[2].open)
        with client:
            assert trio.run(client.ping)
        assert client.name == "initech-eu-2"


async def test_secrets_are_stand_ins_and_redacted():
    resolver = StandInSecrets()
    value = await resolver.resolve("vault:secret/tenants/acme#token")
    assert value.startswith("rehearsal-")
    assert await resolver.resolve("vault:secret/tenants/acme#token") == value
    assert await resolver.resolve("aws-sm:tenants/globex#token") != value
    assert redact(f"token {value}") == "token ***"
    with pytest.raises(SecretError):
        await resolver.resolve("nosuchscheme:x")


# -- --copy-from-live ------------------------------------------------------------------------------------


def _cluster_inventory(cluster, path: Path) -> Path:
    connection = {"kubeconfig": f"file:{cluster.kubeconfig_path}"}
    if cluster.context:
        connection["context"] = cluster.context
    doc = {"clusters": [{"name": "live-1", "tenant": "acme", "region": "eu", "connection": connection}]}
    path.write_text(yaml.safe_dump(doc))
    return path


def test_copy_from_live_reads_only_and_the_rehearsal_starts_from_the_live_objects(fleet, cluster, tmp_path):
    namespace = f"rehearse-{random.randrange(10**6)}"
    inv = str(_cluster_inventory(cluster, tmp_path / "inventory.yaml"))
    first = fleet("run", RELEASE, "-i", inv, "--set", f"namespace={namespace}", "--set", "version=1.25", "-q")
    assert first.returncode == 0, first.stdout + first.stderr
    if cluster.sim is not None:
        cluster.sim.clear_requests()

    result = fleet(
        "rehearse",
        RELEASE,
        "-i",
        inv,
        "--copy-from-live",
        "--set",
        f"namespace={namespace}",
        "--set",
        "version=1.26",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    doc = _rehearsal(result)
    assert doc["rehearsal"]["copied"] == {"live-1": {"Namespace": 1, "Deployment": 1}}
    applied = {o["kind"]: o["result"] for o in doc["clusters"][0]["outputs"]["app"]["objects"]}
    # the Deployment the get step reads was there (copied); the ConfigMap no reading step names was not
    assert applied == {"Namespace": "unchanged", "ConfigMap": "created", "Deployment": "changed"}
    assert "copied from 1 live cluster(s), GET requests only: Deployment 1, Namespace 1" in result.stderr

    if cluster.sim is not None:
        assert {r.method for r in cluster.sim.requests()} == {"GET"}
    live = kubernetes_apps(cluster).read_namespaced_deployment("web", namespace)
    assert live.spec.template.spec.containers[0].image == "nginx:1.25"  # the rehearsed release never reached it
    kubernetes_core(cluster).delete_namespace(namespace)


def kubernetes_apps(cluster):
    import kubernetes

    client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig_path), context=cluster.context)
    return kubernetes.client.AppsV1Api(client)


def kubernetes_core(cluster):
    import kubernetes

    client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig_path), context=cluster.context)
    return kubernetes.client.CoreV1Api(client)


@pytest.mark.sim_only
def test_copy_from_live_names_the_clusters_it_cannot_read(fleet, tmp_path):
    with SimFleet(2, out_dir=tmp_path / "live") as live:
        inv = str(inventory(live, tmp_path / "inventory.yaml"))
        live["sim-1"].set_faults(Faults(down=True))
        result = fleet("rehearse", RELEASE, "-i", inv, "--copy-from-live")
        assert {r.method for r in live["sim-0"].requests()} == {"GET"}
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--copy-from-live could not copy every cluster's objects:\n  sim-1: " in result.stderr
    assert "connection refused" in result.stderr
    assert "Traceback" not in result.stderr


# -- bad input -------------------------------------------------------------------------------------------

KINDS = "down, slow[=SECONDS], errors[=SHARE], throttle[=SHARE], notready"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("globex-eu-1", f"'globex-eu-1': expected CLUSTER:KIND[=VALUE], KIND one of {KINDS}"),
        (":down", "':down': expected CLUSTER:KIND[=VALUE]"),
        (
            "globex:down",
            "'globex:down': no cluster 'globex' among the selected clusters (did you mean 'globex-eu-1'?); "
            "expected one of: acme-eu-1, globex-eu-1, initech-eu-2, umbrella-prod, hooli-eu-west1, piedpiper-1, mgmt",
        ),
        ("mgmt:boom", f"'mgmt:boom': unknown fault kind 'boom'; expected one of: {KINDS}"),
        ("mgmt:errors=2", "'mgmt:errors=2': errors takes a share between 0 and 1, not '2'"),
        ("mgmt:errors=x", "'mgmt:errors=x': errors takes a share between 0 and 1, not 'x'"),
        ("mgmt:slow=-1", "'mgmt:slow=-1': slow takes a number of seconds (0 or more), not '-1'"),
        ("mgmt:down=1", "'mgmt:down=1': the fault 'down' takes no value (write mgmt:down)"),
    ],
)
def test_a_bad_fault_is_refused_before_anything_starts(fleet, fault, message):
    result = fleet("rehearse", RELEASE, "-i", TENANTS, "--fault", fault, COLUMNS="400")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"error: --fault: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "simulated" not in result.stderr  # no fleet was started


def test_a_fault_given_twice_and_a_cluster_outside_the_selection_are_refused(fleet):
    twice = fleet("rehearse", RELEASE, "-i", TENANTS, "--fault", "mgmt:down", "--fault", "mgmt:down", COLUMNS="300")
    assert twice.returncode == 2
    assert "error: --fault: mgmt:down given more than once" in twice.stderr
    outside = fleet("rehearse", RELEASE, "-i", TENANTS, "--limit", "acme-*", "--fault", "mgmt:down", COLUMNS="300")
    assert outside.returncode == 2
    assert "no cluster 'mgmt' among the selected clusters; expected one of: acme-eu-1" in outside.stderr


def test_a_rehearsal_needs_an_inventory(fleet, tmp_path):
    result = fleet("rehearse", RELEASE, "--kubeconfig", str(tmp_path / "kubeconfig"), COLUMNS="300")
    assert result.returncode == 2
    assert "--inventory: fleet rehearse mirrors an inventory's clusters: give --inventory FILE" in result.stderr


def test_the_help_names_every_fault_kind():
    result = CliRunner().invoke(app, ["rehearse", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    for kind in FAULT_KINDS:
        assert kind in result.output
    assert "--copy-from-live" in result.output
    assert "--seed" in result.output


def test_a_gated_wave_opens_at_once_and_steps_see_the_inventory_s_tenant_region_and_labels(fleet, tmp_path):
    playbook = tmp_path / "gated.yaml"
    playbook.write_text(
        """
id: gated
strategy:
  waves:
    - {name: first, percent: 50}
    - {name: rest, rest: true, manual: true}
steps:
  - id: note
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: who, namespace: default}
      data: {tenant: "{{ cluster.tenant }}", region: "{{ cluster.region }}", tier: "{{ cluster.labels.tier }}"}
  - id: read
    type: get
    kind: ConfigMap
    name: who
    namespace: default
    fetchType: FETCH_ONE
    jsonpath: .data
"""
    )
    result = fleet("rehearse", str(playbook), "-i", TENANTS, "--limit", "acme-*,initech-*", "-o", "json", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wave 2: its gate opens at once in a rehearsal" in result.stderr
    seen = {c["cluster"]: c["outputs"]["read"]["values"] for c in _rehearsal(result)["clusters"]}
    assert seen == {
        "acme-eu-1": {"tenant": "acme", "region": "eu-west-1", "tier": "gold"},
        "initech-eu-2": {"tenant": "initech", "region": "eu-central-1", "tier": "silver"},
    }


def test_the_kinds_copied_are_those_the_reading_steps_name_in_their_namespaces(tmp_path):
    from fleet.engine.rehearse import Read, reads
    from fleet.playbook.loader import load_playbook
    from fleet.playbook.variables import ClusterInfo

    playbook = tmp_path / "reads.yaml"
    playbook.write_text(
        """
id: reads
inputs:
  - {id: ns, type: STRING, default: shop}
steps:
  - {id: a, type: get, kind: Deployment, namespace: "{{ inputs.ns }}"}
  - {id: b, type: wait, kind: Deployment, name: web, namespace: "{{ inputs.ns }}"}
  - {id: c, type: get, kind: ConfigMap, namespace: "{{ outputs.a.size }}"}
  - {id: d, type: restart, kind: "{{ outputs.a.items[0].kind }}", name: web}
  - {id: e, type: get, kind: Node}
  - {id: f, type: apply, manifest: {apiVersion: v1, kind: Secret, metadata: {name: s, namespace: applied}}}
  - id: g
    type: if
    condition: "true"
    then:
      - {id: h, type: delete, kind: Secret, name: x, namespace: "{{ cluster.tenant }}"}
  - {id: i, type: get, kind: Pod, all_namespaces: true}
rollback:
  - {id: r, type: patch, kind: Service, name: web, namespace: edge, patchType: merge, patch: {metadata: {}}}
"""
    )
    loaded = load_playbook(playbook)
    found = reads(loaded, {"ns": "shop"}, ClusterInfo("acme-eu-1", "acme", "eu-west-1", {"tier": "gold"}))
    assert found == [
        Read("Deployment", None, None, "shop", False),  # a and b
        Read("ConfigMap", None, None, None, True),  # a namespace known only at run time: every namespace
        Read("Node", None, None, None, False),  # d's kind is known only at run time: not read; f writes only
        Read("Secret", None, None, "acme", False),
        Read("Pod", None, None, None, True),
        Read("Service", None, None, "edge", False),  # rollback steps read too
    ]


WIDGETS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


@pytest.mark.sim_only
def test_copy_from_live_brings_the_definition_of_a_custom_kind_along(fleet, tmp_path):
    from fleet.kube import apply

    playbook = tmp_path / "widgets.yaml"
    playbook.write_text(
        """
id: widgets
steps:
  - {id: list, type: get, kind: Widget, apiGroup: example.com, namespace: gadgets}
"""
    )
    with SimFleet(1, out_dir=tmp_path / "live") as live:
        with KubeClient.from_kubeconfig(live["sim-0"].kubeconfig_path) as client:
            trio.run(lambda: apply(client, WIDGETS, wait_until_ready=30))
            widget = (
                "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: gadgets}\nspec: {size: 3}\n"
            )
            trio.run(
                lambda: apply(client, "apiVersion: v1\nkind: Namespace\nmetadata: {name: gadgets}\n---\n" + widget)
            )
        live["sim-0"].clear_requests()
        result = fleet(
            "rehearse",
            str(playbook),
            "-i",
            str(inventory(live, tmp_path / "inv.yaml")),
            "--copy-from-live",
            "-o",
            "json",
        )
        assert {r.method for r in live["sim-0"].requests()} == {"GET"}
    assert result.returncode == 0, result.stdout + result.stderr
    doc = _rehearsal(result)
    assert doc["rehearsal"]["copied"] == {"sim-0": {"CustomResourceDefinition": 1, "Namespace": 1, "Widget": 1}}
    listed = doc["clusters"][0]["outputs"]["list"]
    assert [(w["metadata"]["name"], w["spec"]) for w in listed["items"]] == [("w1", {"size": 3})]


@pytest.mark.sim_only
def test_ctrl_c_while_copying_from_live_exits_130_and_rehearses_nothing(fleet, tmp_path):
    import signal
    import time

    with SimFleet(1, out_dir=tmp_path / "live") as live:
        live["sim-0"].set_faults(Faults(stall=True))  # the copy's first request gets no answer
        process = fleet.popen(
            "rehearse", RELEASE, "-i", str(inventory(live, tmp_path / "inv.yaml")), "--copy-from-live"
        )
        assert process.stderr is not None
        assert process.stderr.readline().startswith("rehearsal release-")  # then the copy starts
        time.sleep(1)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert time.monotonic() - started < 10  # the stalled read is cut, not waited for
    assert process.returncode == 130, stderr
    assert "interrupted while copying from the live clusters: nothing was rehearsed" in stderr
    assert "Traceback" not in stderr


def test_no_secret_store_is_asked_and_the_playbook_s_secrets_are_redacted_stand_ins(fleet, tmp_path):
    import socket
    import threading

    vault = socket.create_server(("127.0.0.1", 0))
    vault.settimeout(0.2)
    connections: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connections.append(vault.accept()[0])
            except TimeoutError:
                continue

    listener = threading.Thread(target=accept, name="vault-stand-in")
    listener.start()
    inv = tmp_path / "inventory.yaml"
    inv.write_text(
        f"""
secrets:
  vault: {{address: "http://127.0.0.1:{vault.getsockname()[1]}", auth: {{method: token, token: "env:NO_SUCH_TOKEN"}}}}
clusters:
  - {{name: acme-1, tenant: acme, connection: {{kubeconfig: "vault:secret/tenants/acme#kubeconfig"}}}}
  - {{name: globex-1, tenant: globex, connection: {{kubeconfig: "aws-sm:tenants/globex#kubeconfig"}}}}
"""
    )
    playbook = tmp_path / "secret.yaml"
    playbook.write_text(
        """
id: secret
inputs:
  - {id: password, type: SECRET, default: "vault:secret/app#password"}
steps:
  - id: put
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: creds, namespace: default}
      data: {password: "{{ inputs.password }}", token: "{{ secret('vault:secret/app#token') }}"}
  - {id: read, type: get, kind: ConfigMap, name: creds, namespace: default, fetchType: FETCH_ONE, jsonpath: .data}
"""
    )
    try:
        result = fleet("rehearse", str(playbook), "-i", str(inv), "-o", "json", timeout=60)
    finally:
        stop.set()
        listener.join()
        vault.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert connections == []  # Vault was never asked (and AWS has no credentials here)
    seen = {c["cluster"]: c["outputs"]["read"]["values"] for c in _rehearsal(result)["clusters"]}
    assert seen == {name: {"password": "***", "token": "***"} for name in ("acme-1", "globex-1")}
    assert "rehearsal-" not in result.stdout + result.stderr
