"""``playbooks/gpu-job.yaml`` on three simulated clusters with a GPU pool each, a model registry and a
Slack webhook served on 127.0.0.1: the pod lands on the pool, trains on the dataset sent in, its model
comes back as an artifact and its metrics as outputs, the model is registered and announced. A cluster
whose pool has no free GPU fails alone, with the scheduler's FailedScheduling reason, long before the
step's timeout; the others go on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from fleet.artifacts import key_from_uri
from fleet.sim import SimFleet
from fleet.sim.cluster import SimConfig
from tests.engine.conftest import PLAYBOOKS, core, inventory, report
from tests.http_server import HOOK, TOKEN, TestServer, serving

pytestmark = pytest.mark.sim_only

GPU_JOB = str(PLAYBOOKS / "gpu-job.yaml")
LABELS = {name: {"accelerator": "nvidia"} for name in ("sim-0", "sim-1", "sim-2")}


@pytest.fixture
def gpu_fleet(tmp_path) -> Iterator[SimFleet]:
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path / "sim", config=SimConfig(gpu_nodes=1)) as sim:
        yield sim


@pytest.fixture
def server() -> Iterator[TestServer]:
    with serving() as state:
        yield state


def _run(fleet, sim: SimFleet, server: TestServer, tmp_path):
    inv = inventory(sim, tmp_path / "inv.yaml", labels=LABELS)
    env = {"MODEL_REGISTRY_TOKEN": TOKEN, "SLACK_WEBHOOK_URL": server.webhook}
    started = time.monotonic()
    result = fleet("run", GPU_JOB, "-i", str(inv), "--set", f"registry={server.url}", "-o", "json", **env)
    assert "Traceback" not in result.stderr, result.stderr
    for secret in (TOKEN, HOOK):
        assert secret not in result.stdout + result.stderr
        assert secret.encode() not in fleet.journal.read_bytes()
    return result, time.monotonic() - started


def test_the_job_trains_on_the_gpu_pool_registers_the_model_and_announces_it(fleet, gpu_fleet, server, tmp_path):
    result, _ = _run(fleet, gpu_fleet, server, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    clusters = {c["cluster"]: c for c in report(result)["clusters"]}
    assert {name: c["outcome"] for name, c in clusters.items()} == dict.fromkeys(LABELS, "succeeded")
    for name, cluster in clusters.items():
        train = cluster["outputs"]["train"]
        assert train["node"] == f"{name}-node-2"  # the pool node: nodes 0 and 1 have no GPU
        metrics = {m["name"]: m for m in train["metrics"]}
        assert metrics["epochs"] == {"name": "epochs", "type": "counter", "value": 200, "tags": {}}
        assert metrics["rows"]["value"] == 24
        assert metrics["loss"]["type"] == "gauge"
        assert metrics["loss"]["value"] < 0.05
        model = json.loads((fleet.home / "artifacts" / key_from_uri(train["outputFiles"]["model.json"])).read_text())
        assert model["weights"][0] == pytest.approx(2, abs=0.1)
        assert model["bias"] == pytest.approx(1, abs=0.3)
        assert cluster["outputs"]["register"]["status"] == 201
        assert cluster["outputs"]["announce"]["status"] == 200
    registered = sorted(server.models, key=lambda m: m["cluster"])
    assert [(m["name"], m["cluster"]) for m in registered] == [("demand-forecast", name) for name in LABELS]
    for model in registered:
        assert model["artifact"] == clusters[model["cluster"]]["outputs"]["train"]["outputFiles"]["model.json"]
    texts = sorted(m["text"] for m in server.messages())
    assert len(texts) == 3
    assert texts[0].startswith("demand-forecast trained on sim-0 (sim-0-node-2): loss ")
    assert all(m["blocks"][0]["type"] == "section" for m in server.messages())


def hold_every_gpu(sim: SimFleet, name: str) -> None:
    """A running pod ``busy`` in ``default`` on cluster ``name`` that holds every GPU of its pool."""
    busy = {
        "metadata": {"name": "busy"},
        "spec": {
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "containers": [{"name": "hog", "image": "cuda", "resources": {"limits": {"nvidia.com/gpu": "4"}}}],
        },
    }
    api = core(sim, name)
    api.create_namespaced_pod("default", busy)
    deadline = time.monotonic() + 30
    while api.read_namespaced_pod("busy", "default").status.phase != "Running":
        assert time.monotonic() < deadline, f"the pod that holds {name}'s GPUs did not start"
        time.sleep(0.1)


def test_a_cluster_whose_gpu_pool_is_busy_fails_alone_with_the_scheduler_reason(fleet, gpu_fleet, server, tmp_path):
    hold_every_gpu(gpu_fleet, "sim-1")

    result, elapsed = _run(fleet, gpu_fleet, server, tmp_path)
    assert result.returncode == 1
    clusters = {c["cluster"]: c for c in report(result)["clusters"]}
    outcomes = {name: c["outcome"] for name, c in clusters.items()}
    assert outcomes == {"sim-0": "succeeded", "sim-1": "failed", "sim-2": "succeeded"}
    failed = clusters["sim-1"]
    assert failed["failedStep"] == "train"
    assert (
        "the pod is Unschedulable: 0/3 nodes are available: 1 Insufficient nvidia.com/gpu, "
        "2 node(s) didn't match Pod's node affinity/selector." in failed["error"]
    )
    assert "FailedScheduling" in failed["error"]
    assert elapsed < 120  # the step's timeout is PT30M, its waitUntilRunning PT2M: the reason came first
    assert sorted(m["cluster"] for m in server.models) == ["sim-0", "sim-2"]
    assert len(server.messages()) == 2
    left = core(gpu_fleet, "sim-1").list_namespaced_pod("ml").items
    assert [p.metadata.name for p in left] == []  # the Pending pod was deleted
