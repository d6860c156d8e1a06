"""``fleet demo``: a release across a simulated fleet, end to end, through fleet's own library.

It starts ``fleet.sim`` (N clusters over HTTPS on 127.0.0.1), loads the inventory the sim writes, and
fans out over the selected clusters (trio, ``--concurrency`` at once). On each cluster, as a release
playbook would:

1. apply the release (Namespace, ConfigMap, Deployment) with server-side apply and wait until ready;
2. run a smoke test as a pod step (an input file in, an output file and outputs back, pod deleted);
3. patch the ConfigMap (the rotated setting) and restart the Deployment, waiting for the rollout;
4. read the Deployment back.

One cluster failing (``--down`` takes some clusters' API away) fails that cluster only; the exit code
is 1 if any cluster failed.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.cli.fanout import finish

if TYPE_CHECKING:  # imported by the command when it runs, not at start-up
    from fleet.artifacts import LocalArtifactStore
    from fleet.engine.fanout import ClusterResult
    from fleet.kube import KubeClient

console = Console()

NAMESPACE = "shop"
READY = timedelta(minutes=2)

RELEASE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: shop}
data: {release: "2026.11", greeting: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        envFrom: [{configMapRef: {name: web-config}}]
"""

SMOKE_TEST: dict[str, Any] = {
    "namespace": NAMESPACE,
    "image": "busybox:1.36",
    "commands": [
        'echo "smoke test of release $(cat {{ workingDir }}/release.txt) on {{ cluster }}" > {{ outputDir }}/smoke.txt',
        'echo \'::{"outputs": {"checked": "web", "release": "\'$(cat {{ workingDir }}/release.txt)\'"}}::\'',
    ],
    "inputFiles": {"release.txt": "2026.11"},
    "outputDirectory": True,
    "waitUntilRunning": "PT1M",
    "waitUntilCompletion": "PT2M",
}


@dataclass
class ReleaseReport:
    """What the release did on one cluster."""

    applied: int = 0
    smoke: str = ""
    ready: str = ""
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)


async def release(client: KubeClient, cluster: str, artifacts: LocalArtifactStore, run_id: str) -> ReleaseReport:
    import trio

    from fleet.kube import apply, get, patch, restart
    from fleet.pods import PodRunContext, run_pod_task
    from fleet.pods.render import pod_task

    started = trio.current_time()
    report = ReleaseReport()
    applied = await apply(client, RELEASE, wait_until_ready=READY)
    report.applied = len(applied)

    context = PodRunContext(run_id=run_id, cluster=cluster, step_id="smoke-test", artifacts=artifacts)
    result = await run_pod_task(client, pod_task(SMOKE_TEST, {"cluster": cluster}), context=context)
    report.smoke = f"{result.phase}: release {result.outputs.get('release', '?')}"
    report.files = sorted(result.files)

    await patch(client, "ConfigMap", "web-config", {"data": {"greeting": "hello again"}}, namespace=NAMESPACE)
    await restart(client, "Deployment", "web", namespace=NAMESPACE, timeout=READY)
    deployment = await get(client, "Deployment", "web", namespace=NAMESPACE)
    status = deployment.item.get("status") or {}
    report.ready = f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)} ready"
    report.seconds = trio.current_time() - started
    return report


def _render(results: list[ClusterResult], tenants: dict[str, tuple[str, str]], elapsed: float) -> None:
    table = Table(title=f"release 2026.11 on {len(results)} simulated clusters in {elapsed:.1f} s")
    for column in ("cluster", "tenant", "region", "applied", "smoke pod", "files", "rollout", "s"):
        table.add_column(column, overflow="fold")
    for r in results:
        tenant, region = tenants.get(r.cluster, ("", ""))
        if r.error is not None:
            table.add_row(r.cluster, tenant, region, Text(f"failed: {r.error}", style="red"), "", "", "", "")
            continue
        rep: ReleaseReport = r.value
        table.add_row(
            r.cluster,
            tenant,
            region,
            f"{rep.applied} objects",
            rep.smoke,
            ", ".join(rep.files),
            rep.ready,
            f"{rep.seconds:.1f}",
        )
    console.print(table)


def demo(
    clusters: int = typer.Option(3, "--clusters", "-n", min=1, max=1000, help="How many simulated clusters."),
    concurrency: int = typer.Option(10, "--concurrency", "-c", min=1, help="Clusters in flight at once."),
    down: int = typer.Option(0, "--down", min=0, help="Take the API of this many clusters away (failure isolation)."),
) -> None:
    """Run a release (apply, wait ready, smoke-test pod, patch, rolling restart) across a simulated fleet."""
    if down > clusters:
        raise typer.BadParameter(f"--down {down} is more than --clusters {clusters}", param_hint="--down")
    import trio

    from fleet.artifacts import LocalArtifactStore
    from fleet.engine.fanout import fan_out, inventory_targets
    from fleet.sim import Faults, SimFleet  # here, not at start-up: other commands would pay for it

    with tempfile.TemporaryDirectory(prefix="fleet-demo-") as tmp, SimFleet(clusters, out_dir=Path(tmp) / "sim") as sim:
        for cluster in sim.clusters[clusters - down :]:
            cluster.set_faults(Faults(down=True))
        artifacts = LocalArtifactStore(Path(tmp) / "artifacts")
        run_id = uuid.uuid4().hex[:8]
        console.print(f"{clusters} simulated clusters up; inventory {sim.inventory_path}")
        started = time.perf_counter()
        tenants: dict[str, tuple[str, str]] = {}

        async def run() -> list[ClusterResult]:
            targets = await inventory_targets([sim.inventory_path])
            tenants.update({t.name: (t.cluster.tenant or "", t.cluster.region or "") for t in targets if t.cluster})
            return await fan_out(
                targets,
                lambda client: release(client, client.name, artifacts, run_id),
                concurrency=concurrency,
            )

        results = trio.run(run)
        _render(results, tenants, time.perf_counter() - started)
    finish(results, suffix="; the others were released")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
