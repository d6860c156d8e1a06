"""The progress bar of a fan-out over more than a handful of clusters: on a terminal only, one step per
finished cluster, failures counted."""

from __future__ import annotations

import trio
from rich.console import Console

from fleet.engine.fanout import Target, fan_out
from fleet.errors import ClusterError
from fleet.kube import KubeClient
from fleet.report.progress import HANDFUL, FanOutProgress
from tests.conftest import TestCluster


def _targets(cluster: TestCluster, count: int) -> list[Target]:
    async def open_client() -> KubeClient:
        return KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context)

    return [Target(f"c{i}", open_client) for i in range(count)]


def _run(cluster: TestCluster, count: int, console: Console) -> list[str]:
    """A fan-out of ``GET /version`` over ``count`` targets (c3 fails) under a bar on ``console``."""
    done: list[str] = []

    async def operation(client: KubeClient) -> object:
        version = await client.request("GET", "/version")
        if len(done) == 3:
            raise ClusterError("made to fail", cluster="c3")
        return version

    async def main() -> None:
        with FanOutProgress(count, console=console) as progress:

            def on_done(result: object) -> None:
                done.append(getattr(result, "cluster", ""))
                progress.advance(result)  # type: ignore[arg-type]

            await fan_out(_targets(cluster, count), operation, concurrency=1, on_done=on_done)

    trio.run(main)
    return done


def _terminal() -> Console:
    return Console(record=True, force_terminal=True, width=100, color_system=None)


def test_a_bar_on_a_terminal_advances_per_cluster_and_counts_failures(cluster):
    console = _terminal()
    done = _run(cluster, 8, console)
    assert sorted(done) == [f"c{i}" for i in range(8)]  # on_done once per finished cluster
    text = console.export_text()
    assert "clusters" in text
    assert "8/8" in text
    assert "1 failed" in text


def test_no_bar_for_a_handful_of_clusters_or_off_a_terminal(cluster):
    few = _terminal()
    _run(cluster, HANDFUL, few)
    assert few.export_text() == ""
    pipe = Console(record=True, force_terminal=False, width=100)
    _run(cluster, 8, pipe)
    assert pipe.export_text() == ""
