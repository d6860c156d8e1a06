"""One cluster's Kubernetes traffic through ``fleet.kube`` alone, on many sim clusters at once.

What ``benchmarks/playbooks/fanout.yaml`` does on each cluster, without the engine: ``apply`` of the
3-object manifest with ``wait_until_ready``, then ``get`` of the Deployment with its ``jsonpath``, at most
``--concurrency`` clusters at once, every client sharing one ``RunLimiters``. Printed per cluster: the
requests and connections of the client's urllib3 pool, the TLS connections opened (``connect`` calls,
reconnects included) and the ``SSLContext``s built; and this process's CPU seconds.

    .venv/bin/python benchmarks/kube_traffic.py [--clusters 100] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import resource
import ssl
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
import trio
from simproc import sim_up

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "benchmarks" / "playbooks" / "manifest.yaml.j2"


def count_tls(counts: Counter[str]) -> None:
    """Count TLS connections opened and ``SSLContext``s built (from now on, in this process)."""
    from fleet.kube import interruptible

    connect = interruptible._TrackedHTTPSConnection.connect

    def counting_connect(self: Any) -> None:
        counts["connects"] += 1
        connect(self)

    interruptible._TrackedHTTPSConnection.connect = counting_connect  # type: ignore[method-assign]
    new = ssl.SSLContext.__new__

    def counting_new(cls: Any, *args: Any, **kwargs: Any) -> Any:
        counts["contexts"] += 1
        return new(cls, *args, **kwargs)

    ssl.SSLContext.__new__ = counting_new  # type: ignore[method-assign]


async def fan_out(sim_dir: Path, clusters: int, concurrency: int, counts: Counter[str]) -> None:
    from fleet.kube import KubeClient, RunLimiters, apply, get
    from fleet.kube.get import FetchType
    from fleet.settings import FleetSettings

    name = f"traffic-{uuid.uuid4().hex[:6]}"
    text = jinja2.Template(MANIFEST.read_text()).render(inputs={"name": name})
    limiter = trio.CapacityLimiter(concurrency)
    limiters = RunLimiters.from_settings(FleetSettings())

    async def one(index: int) -> None:
        async with limiter:
            kubeconfig = sim_dir / "kubeconfigs" / f"sim-{index}.yaml"
            with KubeClient.from_kubeconfig(kubeconfig, context=f"sim-{index}", limiters=limiters) as client:
                await apply(client, text, namespace="default", wait_until_ready=300)
                await get(
                    client,
                    "Deployment",
                    name,
                    api_version="apps/v1",
                    namespace="default",
                    fetch_type=FetchType.FETCH_ONE,
                    jsonpath=".status.readyReplicas",
                )
                pool = client.api_client.rest_client.pool_manager.connection_from_url(client.host)
                counts["requests"] += pool.num_requests
                counts["connections"] += pool.num_connections

    async with trio.open_nursery() as nursery:
        for index in range(clusters):
            nursery.start_soon(one, index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-traffic-") as tmp:
        sim_dir = Path(tmp) / "sim"
        with sim_up(args.clusters, sim_dir, tls=True):
            counts: Counter[str] = Counter()
            count_tls(counts)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            before = usage.ru_utime + usage.ru_stime
            trio.run(fan_out, sim_dir, args.clusters, args.concurrency, counts)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu = usage.ru_utime + usage.ru_stime - before
    n = args.clusters
    print(f"{n} clusters, concurrency {args.concurrency}, per cluster:")
    print(f"  requests             {counts['requests'] / n:.1f}")
    print(f"  pool connections     {counts['connections'] / n:.2f}")
    print(f"  TLS connects         {counts['connects'] / n:.2f}")
    print(f"  SSLContexts built    {counts['contexts'] / n:.2f}")
    print(f"  CPU                  {cpu / n * 1000:.1f} ms (fleet.kube in this process, imports excluded)")


if __name__ == "__main__":
    main()
