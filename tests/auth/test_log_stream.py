"""A pod's log stream that outlives several tokens: every reopen of the stream (and of the pod watch)
may meet a dead token, gets a 401, refreshes once and carries on; no line is lost or repeated."""

import uuid
from datetime import timedelta

import pytest
import trio

from fleet.artifacts import LocalArtifactStore
from fleet.kube import KubeClient
from fleet.pods import PodRunContext, PodTask, run_pod_task
from fleet.pods import logs as pod_logs
from tests.auth.test_long_run import SimTokens

LINES = 60


@pytest.mark.slow
@pytest.mark.sim_only  # the sim issues tokens that die after a given time
async def test_a_log_stream_that_outlives_its_tokens_loses_and_repeats_nothing(
    cluster, namespace, tmp_path, monkeypatch, caplog
):
    caplog.set_level("INFO", logger="fleet.pods.log")
    # Reopen the stream every 0.4 s while tokens die 0.8 s after they were minted: a reopen often meets a
    # dead token (and a fresh one has 0.8 s to reach the server, even on a loaded machine).
    monkeypatch.setattr(pod_logs, "PROACTIVE_RECONNECT", timedelta(seconds=0.4))
    provider = SimTokens(cluster.sim, ttl=0.8)
    step = PodTask.model_validate({
        "namespace": namespace,
        "image": "busybox",
        "commands": [f"i=0; while [ $i -lt {LINES} ]; do echo line-$i; echo same; i=$((i+1)); sleep 0.05; done"],
    })
    context = PodRunContext(run_id=f"run-{uuid.uuid4().hex[:8]}", cluster=cluster.context or "cluster",
                            step_id="outlive", artifacts=LocalArtifactStore(tmp_path / "artifacts"))
    with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context,
                                    token_provider=provider) as kube, trio.fail_after(60):
        result = await run_pod_task(kube, step, context=context)
    lines = [r.getMessage() for r in caplog.records if r.name == "fleet.pods.log"]
    assert [line for line in lines if line.startswith("line-")] == [f"line-{i}" for i in range(LINES)]
    assert lines.count("same") == LINES
    assert result.exit_code == 0
    assert result.log_reconnects >= 2
    assert provider.statistics().invalidations >= 2  # tokens did die under the run, and nobody saw it
