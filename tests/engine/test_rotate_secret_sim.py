"""``playbooks/rotate-secret.yaml`` on three simulated clusters against a real OpenBao: Vault rotates once,
every cluster's Secret gets the new version and its readers restart until available; a tenant whose app
rejects the new value is restored to the previous version alone (Vault keeps the new one); when every
tenant rejects it, Vault is restored too. No secret value reaches the journal, the report or the logs."""

from __future__ import annotations

import base64
import secrets as pysecrets
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.kube.restart import RESTARTED_AT
from fleet.sim import SimFleet
from tests.engine.conftest import PLAYBOOKS, Fleet, apps, core, inventory, report
from tests.services import OpenBao, openbao

__all__ = ["openbao"]

pytestmark = pytest.mark.sim_only

ROTATE = str(PLAYBOOKS / "rotate-secret.yaml")
SECRET = "db-credentials"
#: The app: it refuses to start with a password its database does not accept (``ACCEPTS``, when set).
APP = (
    'if [ -n "$ACCEPTS" ] && [ "$DB_PASSWORD" != "$ACCEPTS" ]; then echo "password rejected"; exit 1; fi; '
    "exec sleep 3600"
)


@pytest.fixture(scope="module")
def sim3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path_factory.mktemp("rotate")) as sim:
        yield sim


def _deployment(name: str, namespace: str, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "minReadySeconds": 2,  # available once up for 2 s: an app that exits at once never is
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
        },
    }


def _tenant(sim: SimFleet, name: str, namespace: str, password: str, *, rejects_new: bool) -> None:
    """A namespace with the Secret, the database's accepted password (only where it rejects a new one),
    an app reading the Secret by env, a worker reading it by envFrom, and a Deployment that does not."""
    v1, appsv1 = core(sim, name), apps(sim, name)
    v1.create_namespace({"metadata": {"name": namespace}})
    data = {"password": base64.b64encode(password.encode()).decode()}
    v1.create_namespaced_secret(namespace, {"metadata": {"name": SECRET}, "data": data})
    accepts = {"accepts": password} if rejects_new else {}
    v1.create_namespaced_config_map(namespace, {"metadata": {"name": "db"}, "data": accepts})
    api = {
        "name": "api",
        "image": "example/api:1",
        "command": ["sh", "-c", APP],
        "env": [
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "password"}}},
            {"name": "ACCEPTS", "valueFrom": {"configMapKeyRef": {"name": "db", "key": "accepts", "optional": True}}},
        ],
    }
    worker = {"name": "worker", "image": "example/worker:1", "envFrom": [{"secretRef": {"name": SECRET}}]}
    other = {"name": "other", "image": "example/other:1"}
    for deployment in (
        _deployment("api", namespace, api),
        _deployment("worker", namespace, worker),
        _deployment("other", namespace, other),
    ):
        appsv1.create_namespaced_deployment(namespace, deployment)


def _wait_available(sim: SimFleet, name: str, namespace: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = apps(sim, name).list_namespaced_deployment(namespace).items
        if items and all((d.status.available_replicas or 0) == d.spec.replicas for d in items):
            return
        time.sleep(0.2)
    raise AssertionError(f"the Deployments of {name}/{namespace} did not become available")


def _secret_value(sim: SimFleet, name: str, namespace: str) -> tuple[str, str]:
    secret = core(sim, name).read_namespaced_secret(SECRET, namespace)
    version = secret.metadata.annotations["fleet.dev/vault-version"]
    return base64.b64decode(secret.data["password"]).decode(), version


def _restarted(sim: SimFleet, name: str, namespace: str) -> dict[str, bool]:
    out = {}
    for d in apps(sim, name).list_namespaced_deployment(namespace).items:
        annotations = d.spec.template.metadata.annotations or {}
        out[d.metadata.name] = RESTARTED_AT in annotations
    return out


def _vault(openbao: OpenBao, path: str, version: int | None = None) -> tuple[dict[str, Any], int]:
    mount, inner = path.split("/", 1)
    data = openbao.client().secrets.kv.v2.read_secret_version(
        path=inner, version=version, mount_point=mount, raise_on_deleted_version=True
    )["data"]
    return data["data"], int(data["metadata"]["version"])


class Rotation:
    """One rotation run: a fresh Vault path and namespace, the tenants set up, ``fleet run`` and its traces."""

    def __init__(self, sim: SimFleet, openbao: OpenBao, fleet: Fleet, tmp_path: Path, rejecting: set[str]) -> None:
        self.sim, self.openbao, self.fleet = sim, openbao, fleet
        self.path = f"secret/rotate-{uuid.uuid4().hex[:8]}/db"
        self.namespace = f"app-{uuid.uuid4().hex[:6]}"
        self.old = f"old-{pysecrets.token_urlsafe(12)}"
        mount, inner = self.path.split("/", 1)
        openbao.client().secrets.kv.v2.create_or_update_secret(
            path=inner, secret={"password": self.old, "user": "app"}, mount_point=mount
        )
        self.names = [c.name for c in sim.clusters]
        for name in self.names:
            _tenant(sim, name, self.namespace, self.old, rejects_new=name in rejecting)
        for name in self.names:
            _wait_available(sim, name, self.namespace)
        inv = yaml.safe_load(inventory(sim, tmp_path / "inv.yaml").read_text())
        inv["secrets"] = {
            "vault": {"address": openbao.address, "auth": {"method": "token", "token": "env:VAULT_TOKEN"}}
        }
        self.inventory = tmp_path / "inv.yaml"
        self.inventory.write_text(yaml.safe_dump(inv, sort_keys=False))

    def args(self, wait: str = "PT8S") -> list[str]:
        return [
            "run", ROTATE, "-i", str(self.inventory), "-o", "json",
            "--set", f"path={self.path}", "--set", f"namespace={self.namespace}", "--set", f"wait={wait}",
        ]  # fmt: skip

    @property
    def env(self) -> dict[str, str]:
        return {"VAULT_TOKEN": self.openbao.root_token, "FLEET_LOG_LEVEL": "DEBUG"}

    def run(self) -> tuple[int, dict[str, Any], str]:
        result = self.fleet(*self.args(), **self.env)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stdout, result.stderr
        return result.returncode, report(result), result.stdout + result.stderr

    def assert_no_value_leaked(self, output: str) -> None:
        new, _ = _vault(self.openbao, self.path, 2)
        values = [self.old, new["password"]]
        journal = b"".join(p.read_bytes() for p in self.fleet.home.glob("journal.sqlite*") if p.is_file())
        for value in values:
            for form in (value, base64.b64encode(value.encode()).decode()):
                assert form not in output
                assert form.encode() not in journal
        assert "***" in output  # the values were there, redacted (vault.read's data)
        assert "resolved secret" in output or "DEBUG" in output  # the logs were captured at DEBUG


def _outcomes(doc: dict[str, Any]) -> dict[str, str]:
    return {c["cluster"]: c["outcome"] for c in doc["clusters"]}


def test_every_cluster_gets_the_new_version_and_its_readers_restart(sim3, openbao, fleet, tmp_path):
    rotation = Rotation(sim3, openbao, fleet, tmp_path, rejecting=set())
    code, doc, output = rotation.run()
    assert code == 0, output
    assert _outcomes(doc) == dict.fromkeys(rotation.names, "succeeded")
    assert doc["runSteps"]["steps"] == {"rotate": "succeeded"}  # once, not per cluster
    assert doc["runSteps"]["outputs"]["rotate"] == {
        "path": rotation.path, "key": "password", "version": 2, "previousVersion": 1,
    }  # fmt: skip
    data, version = _vault(openbao, rotation.path)
    assert version == 2
    assert data["user"] == "app"
    assert data["password"] != rotation.old
    assert len(data["password"]) == 32
    for name in rotation.names:
        assert _secret_value(sim3, name, rotation.namespace) == (data["password"], "2")
        assert _restarted(sim3, name, rotation.namespace) == {"api": True, "worker": True, "other": False}
        cluster = next(c for c in doc["clusters"] if c["cluster"] == name)
        assert cluster["outputs"]["restart"]["restarted"] == ["api", "worker"]
        assert cluster["steps"]["available"] == "succeeded"
    rotation.assert_no_value_leaked(output)


def test_a_tenant_that_rejects_the_new_value_alone_is_restored(sim3, openbao, fleet, tmp_path):
    bad = sim3.clusters[1].name
    rotation = Rotation(sim3, openbao, fleet, tmp_path, rejecting={bad})
    code, doc, output = rotation.run()
    assert code == 1, output
    assert _outcomes(doc) == {n: ("rolled_back" if n == bad else "succeeded") for n in rotation.names}
    failed = next(c for c in doc["clusters"] if c["cluster"] == bad)
    assert failed["failedStep"] == "restart"
    assert failed["steps"]["restart_again"] == "succeeded"
    assert doc["runSteps"]["steps"] == {"rotate": "succeeded", "restore_vault": "skipped"}
    new, version = _vault(openbao, rotation.path)
    assert version == 2  # Vault keeps the new version: two clusters use it
    assert _secret_value(sim3, bad, rotation.namespace) == (rotation.old, "1")
    _wait_available(sim3, bad, rotation.namespace)  # restarted again on the previous version: available
    for name in rotation.names:
        if name != bad:
            assert _secret_value(sim3, name, rotation.namespace) == (new["password"], "2")
    rotation.assert_no_value_leaked(output)


def test_when_every_tenant_rejects_it_vault_is_restored_too(sim3, openbao, fleet, tmp_path):
    rotation = Rotation(sim3, openbao, fleet, tmp_path, rejecting={c.name for c in sim3.clusters})
    code, doc, output = rotation.run()
    assert code == 1, output
    assert _outcomes(doc) == dict.fromkeys(rotation.names, "rolled_back")
    assert doc["runSteps"]["steps"] == {"rotate": "succeeded", "restore_vault": "succeeded"}
    assert doc["runSteps"]["outputs"]["restore_vault"] == {
        "path": rotation.path, "version": 3, "restoredFrom": 1, "previousVersion": 2,
    }  # fmt: skip
    data, version = _vault(openbao, rotation.path)
    assert version == 3
    assert data == {"password": rotation.old, "user": "app"}
    for name in rotation.names:
        assert _secret_value(sim3, name, rotation.namespace) == (rotation.old, "1")
        _wait_available(sim3, name, rotation.namespace)
    rotation.assert_no_value_leaked(output)


def _wait_for_restarts(fleet: Fleet, clusters: int, timeout: float = 60) -> str:
    """Until every cluster's restart step is in flight (the journal says); returns the run id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rows = fleet.rows("SELECT run_id FROM steps WHERE step='restart' AND status='running'")
        except sqlite3.OperationalError:  # the journal is not created yet
            rows = []
        if len(rows) == clusters:
            return str(rows[0][0])
        time.sleep(0.05)
    raise AssertionError("the restarts never were all in flight")


def test_ctrl_c_skips_on_failure_and_resume_neither_rotates_again_nor_leaks(sim3, openbao, fleet, tmp_path):
    rotation = Rotation(sim3, openbao, fleet, tmp_path, rejecting={c.name for c in sim3.clusters})
    process = fleet.popen(*rotation.args(wait="PT60S"), **rotation.env)
    try:
        run_id = _wait_for_restarts(fleet, len(rotation.names))
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    run_rows = fleet.rows("SELECT step, status FROM steps WHERE run_id=? AND cluster='(run)'", run_id)
    assert run_rows == [("rotate", "succeeded")]  # interrupted: onFailure did not run
    assert _vault(openbao, rotation.path)[1] == 2

    read_query = "SELECT cluster, started FROM steps WHERE run_id=? AND step='new' ORDER BY cluster"
    apply_query = "SELECT cluster, started FROM steps WHERE run_id=? AND step='secret' ORDER BY cluster"
    read_before, apply_before = fleet.rows(read_query, run_id), fleet.rows(apply_query, run_id)
    # Meanwhile the tenants' databases learn the new password: the resumed restarts come up.
    for name in rotation.names:
        core(sim3, name).patch_namespaced_config_map("db", rotation.namespace, {"data": {"accepts": ""}})
    resumed = fleet("resume", run_id, **rotation.env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert fleet.rows("SELECT status FROM runs WHERE id=?", run_id) == [("succeeded",)]
    # Succeeded, so onFailure did not run; rotate was not run again.
    assert fleet.rows("SELECT step, status FROM steps WHERE run_id=? AND cluster='(run)'", run_id) == [
        ("rotate", "succeeded")
    ]
    # The secret was read again (its journaled outputs are redacted), the other finished steps were not.
    assert fleet.rows(read_query, run_id) != read_before
    assert fleet.rows(apply_query, run_id) == apply_before
    new, version = _vault(openbao, rotation.path)
    assert version == 2  # rotated once: the resumed run did not rotate again
    for name in rotation.names:  # the secret read again on resume (the journal holds it redacted)
        assert _secret_value(sim3, name, rotation.namespace) == (new["password"], "2")
        _wait_available(sim3, name, rotation.namespace)
    rotation.assert_no_value_leaked(stdout + stderr + resumed.stdout + resumed.stderr)


def test_a_plan_writes_nothing_to_vault(sim3, openbao, fleet, tmp_path):
    rotation = Rotation(sim3, openbao, fleet, tmp_path, rejecting=set())
    args = rotation.args()
    result = fleet("plan", *args[1 : args.index("-o")], *args[args.index("-o") + 2 :], **rotation.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _vault(openbao, rotation.path)[1] == 1
    for name in rotation.names:
        secret = core(sim3, name).read_namespaced_secret(SECRET, rotation.namespace)
        assert base64.b64decode(secret.data["password"]).decode() == rotation.old
        assert secret.metadata.annotations is None  # not annotated with a Vault version: not applied
        assert not any(_restarted(sim3, name, rotation.namespace).values())


def test_a_plan_shows_no_secret_data(sim3, openbao, fleet, tmp_path):
    rotation = Rotation(sim3, openbao, fleet, tmp_path, rejecting=set())
    args = rotation.args()
    result = fleet("plan", *args[1 : args.index("-o")], *args[args.index("-o") + 2 :], **rotation.env)
    assert result.returncode == 0, result.stdout + result.stderr
    for form in (rotation.old, base64.b64encode(rotation.old.encode()).decode()):
        assert form not in result.stdout + result.stderr
