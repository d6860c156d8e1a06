"""``SimFleet`` as a context manager, and the ``fleet sim`` commands (up, fault, faults)."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import kubernetes
import pytest
import yaml
from typer.testing import CliRunner

from fleet.cli.app import app
from fleet.inventory import load_inventory
from fleet.sim import Faults, SimFleet

pytestmark = pytest.mark.sim_only


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_fleet_writes_kubeconfigs_and_inventory_and_stops_cleanly(tmp_path):
    threads_before = set(threading.enumerate())
    with SimFleet(3, tls=False, out_dir=tmp_path, services=False) as sim:
        assert [c.name for c in sim.clusters] == ["sim-0", "sim-1", "sim-2"]
        assert sim["sim-1"] is sim.clusters[1]
        assert len({c.port for c in sim.clusters}) == 3
        inventory = yaml.safe_load(sim.inventory_path.read_text())
        assert inventory["defaults"]["labels"] == {"env": "sim"}
        entry = inventory["clusters"][1]
        assert entry["name"] == "sim-1"
        assert entry["connection"] == {"kubeconfig": "file:kubeconfigs/sim-1.yaml", "context": "sim-1"}
        assert (tmp_path / "kubeconfigs" / "sim-1.yaml").exists()
        kubeconfig = yaml.safe_load(sim.clusters[1].kubeconfig_path.read_text())
        assert kubeconfig["current-context"] == "sim-1"
        assert kubeconfig["clusters"][0]["cluster"]["server"].startswith("http://127.0.0.1:")
        assert sim.clusters[1].kubeconfig_path.stat().st_mode & 0o077 == 0

        api_client = kubernetes.config.new_client_from_config(str(sim.clusters[2].kubeconfig_path))
        with api_client:
            core = kubernetes.client.CoreV1Api(api_client)
            core.create_namespaced_config_map("default", {"metadata": {"name": "only-here"}})
        assert sim.clusters[2].call(lambda state: state.store.get(state.rt("", "ConfigMap"), "default", "only-here"))
        assert (
            sim.clusters[0].call(lambda state: state.store.get(state.rt("", "ConfigMap"), "default", "only-here"))
            is None
        )
        ports = [c.port for c in sim.clusters]
    assert all(_refused(port) for port in ports)
    assert [t for t in threading.enumerate() if t not in threads_before and t.is_alive()] == []


def test_tls_kubeconfig_carries_the_ca(sim):
    kubeconfig = sim.clusters[0].kubeconfig()
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"].startswith("https://127.0.0.1:")
    assert cluster["certificate-authority-data"]
    assert kubeconfig["users"][0]["user"]["token"] == sim.clusters[0].token


def test_a_down_cluster_refuses_connections_until_it_is_up_again(tmp_path):
    with SimFleet(1, tls=False, out_dir=tmp_path, services=False) as sim:
        cluster = sim.clusters[0]
        cluster.set_faults(Faults(down=True))
        assert _refused(cluster.port)
        cluster.set_faults(Faults())
        assert not _refused(cluster.port)


def _fleet_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "fleet", *args]


def test_cli_up_then_fault_then_ctrl_c(tmp_path):
    out = tmp_path / "fleet"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        _fleet_cmd("sim", "up", "--clusters", "2", "--out", str(out), "--no-tls"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while not any("Ctrl-C" in line for line in lines):
            assert time.monotonic() < deadline, "fleet sim up did not start"
            line = proc.stdout.readline()
            assert line, "fleet sim up exited early:\n" + "".join(lines)
            lines.append(line)
        printed = "".join(lines)
        assert "kubectl sends no bearer token over plain HTTP" in printed  # --no-tls: kubectl needs TLS
        assert str(out / "inventory.yaml") in printed.replace("\n", "")
        # The inventory lists both clusters (fleet's own loader reads it); each kubeconfig reaches its cluster.
        inventory = load_inventory([out / "inventory.yaml"])
        assert [c.name for c in inventory.clusters] == ["sim-0", "sim-1"]
        for entry in inventory.clusters:
            path = out / "kubeconfigs" / f"{entry.name}.yaml"
            assert entry.connection.kubeconfig == f"file:kubeconfigs/{entry.name}.yaml"
            server = yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["server"]
            assert server in printed
            api_client = kubernetes.config.new_client_from_config(str(path))
            with api_client:
                assert "default" in {
                    n.metadata.name for n in kubernetes.client.CoreV1Api(api_client).list_namespace().items
                }
        kubeconfig = yaml.safe_load((out / "kubeconfigs" / "sim-0.yaml").read_text())
        port = int(kubeconfig["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])

        runner = CliRunner()
        result = runner.invoke(app, ["sim", "fault", "--dir", str(out), "--cluster", "sim-0", "--down"])
        assert result.exit_code == 0, result.output
        assert "down=True" in result.output
        assert _refused(port)
        listed = runner.invoke(app, ["sim", "faults", "--dir", str(out)])
        assert "down=True" in listed.output
        healthy = runner.invoke(app, ["sim", "fault", "--dir", str(out), "--cluster", "sim-0"])
        assert "healthy" in healthy.output
        assert not _refused(port)
        unknown = runner.invoke(app, ["sim", "fault", "--dir", str(out), "--cluster", "nope", "--latency", "1"])
        assert unknown.exit_code != 0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0


def test_cli_fault_without_a_running_fleet_says_so(tmp_path):
    result = CliRunner().invoke(app, ["sim", "fault", "--dir", str(tmp_path), "--cluster", "sim-0"])
    assert result.exit_code != 0
    assert "control.json" in str(result.exception) or "control.json" in result.output


def test_pods_become_ready_after_the_configured_delay(tmp_path):
    from kubernetes import watch

    from fleet.sim.cluster import SimConfig

    with SimFleet(1, tls=False, out_dir=tmp_path, config=SimConfig(ready_delay=1.0)) as sim:
        api_client = kubernetes.config.new_client_from_config(str(sim.clusters[0].kubeconfig_path))
        with api_client:
            core = kubernetes.client.CoreV1Api(api_client)
            start = core.list_namespaced_pod("default").metadata.resource_version
            created = time.monotonic()
            core.create_namespaced_pod(
                "default", {"metadata": {"name": "slow"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
            )
            running_at = ready_at = None
            w = watch.Watch()
            for event in w.stream(core.list_namespaced_pod, "default", resource_version=start, timeout_seconds=20):
                pod = event["object"]
                conditions = {c.type: c.status for c in (pod.status.conditions or [])}
                if pod.status.phase == "Running" and running_at is None:
                    running_at = time.monotonic()
                    assert conditions.get("Ready") != "True"
                if conditions.get("Ready") == "True":
                    ready_at = time.monotonic()
                    w.stop()
            assert running_at is not None
            assert ready_at is not None
            assert running_at - created < 1.0
            assert ready_at - created >= 0.9


async def test_a_crashed_cluster_service_is_logged_and_restarted(autojump_clock, caplog):
    import trio

    from fleet.sim.cluster import ClusterState
    from fleet.sim.fleet import supervised

    runs = []

    async def flaky(state):
        runs.append(trio.current_time())
        if len(runs) < 3:
            raise RuntimeError("a bug")

    await supervised(flaky, ClusterState("sup"), "kubelet")
    assert len(runs) == 3
    assert [round(b - a, 3) for a, b in itertools.pairwise(runs)] == [0.1, 0.5]
    crashed = [r for r in caplog.records if "the kubelet crashed" in r.getMessage()]
    assert len(crashed) == 2
    assert all(r.exc_info for r in crashed)

    async def forever(state):
        await trio.sleep_forever()

    with trio.move_on_after(1) as scope:  # cancellation is not a crash: it ends the service
        await supervised(forever, ClusterState("sup"), "kubelet")
    assert scope.cancelled_caught
    assert len([r for r in caplog.records if "the kubelet crashed" in r.getMessage()]) == 2
