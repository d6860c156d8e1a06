"""Apply a 3-object manifest (ConfigMap, Deployment, Service) and wait until ready, on one sim cluster:
fleet's ``apply(..., wait_until_ready=...)`` against the raw official client doing the same (server-side
apply through the generated APIs, then a watch until the Deployment is available), in the same run.

Prints the median wall time of each, their ratio (fleet / raw; the target is ≤ 1.2), and the API requests
fleet makes per apply, from the sim's request log.

    .venv/bin/python benchmarks/kube_apply.py [--rounds 11]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import kubernetes
import trio
import yaml

from fleet.kube import KubeClient
from fleet.kube.apply import apply
from fleet.sim import SimCluster, SimFleet

MANIFEST = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {level: info}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: main, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""
DOCS = list(yaml.safe_load_all(MANIFEST))
TIMEOUT = 60


def raw_apply_and_wait(api: kubernetes.client.ApiClient, namespace: str) -> None:
    """What a user of the official client writes: SSA each object, then watch the Deployment until ready."""
    core = kubernetes.client.CoreV1Api(api)
    apps = kubernetes.client.AppsV1Api(api)
    ssa = {"field_manager": "raw", "_content_type": "application/apply-patch+yaml"}
    cm, deploy, svc = DOCS
    core.patch_namespaced_config_map("settings", namespace, cm, **ssa)
    applied = apps.patch_namespaced_deployment("web", namespace, deploy, **ssa)
    core.patch_namespaced_service("web", namespace, svc, **ssa)
    generation = applied.metadata.generation
    watch = kubernetes.watch.Watch()
    for event in watch.stream(
        apps.list_namespaced_deployment, namespace, field_selector="metadata.name=web", timeout_seconds=TIMEOUT
    ):
        d = event["object"]
        s = d.status
        if (
            s is not None
            and (s.observed_generation or 0) >= generation
            and (s.updated_replicas or 0) == d.spec.replicas
            and (s.available_replicas or 0) == d.spec.replicas
            and (s.ready_replicas or 0) == d.spec.replicas
            and (s.replicas or 0) == d.spec.replicas
        ):
            watch.stop()
            return
    raise RuntimeError("the raw client's deployment never became ready")


def make_namespace(api: kubernetes.client.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


async def warm_applies(cluster: SimCluster, namespace: str, rounds: int) -> list[int]:
    """Requests per apply of an unchanged manifest with one long-lived client (discovery cached)."""
    counts = []
    client = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.name)
    try:
        await apply(client, MANIFEST, namespace=namespace, wait_until_ready=TIMEOUT)
        for _ in range(rounds):
            await trio.to_thread.run_sync(cluster.clear_requests)
            await apply(client, MANIFEST, namespace=namespace, wait_until_ready=TIMEOUT)
            records = await trio.to_thread.run_sync(cluster.requests)
            counts.append(len([r for r in records if "watch=true" not in r.query]))
    finally:
        client.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, SimFleet(clusters=1, tls=True, out_dir=Path(tmp)) as sim:
        cluster = sim.clusters[0]
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig_path), context=cluster.name)
        fleet_times: list[float] = []
        raw_times: list[float] = []
        requests_per_apply: list[int] = []
        raw_requests: list[int] = []
        warm_requests: list[int] = []
        kinds: Counter[str] = Counter()

        async def fleet_round(namespace: str) -> float:
            # A fresh client each round: its discovery is part of the cost.
            start = time.perf_counter()
            client = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.name)
            try:
                await apply(client, MANIFEST, namespace=namespace, wait_until_ready=TIMEOUT)
                return time.perf_counter() - start
            finally:
                client.close()

        for _ in range(args.rounds):
            ns_fleet = make_namespace(api, "bench-fleet")
            ns_raw = make_namespace(api, "bench-raw")
            cluster.clear_requests()
            fleet_times.append(trio.run(fleet_round, ns_fleet))
            records = [r for r in cluster.requests() if "watch=true" not in r.query]
            requests_per_apply.append(len(records))
            kinds.update(f"{r.method} {'discovery' if r.path.count('/') <= 3 else 'object'}" for r in records)
            cluster.clear_requests()
            start = time.perf_counter()
            # A fresh client each round, like fleet's: both pay for their connections.
            raw_api = kubernetes.config.new_client_from_config(
                config_file=str(cluster.kubeconfig_path), context=cluster.name
            )
            raw_apply_and_wait(raw_api, ns_raw)
            raw_times.append(time.perf_counter() - start)
            raw_api.close()
            raw_requests.append(len([r for r in cluster.requests() if "watch=true" not in r.query]))
        warm_requests = trio.run(warm_applies, cluster, make_namespace(api, "bench-warm"), args.rounds)
        api.close()

    fleet_median = statistics.median(fleet_times)
    raw_median = statistics.median(raw_times)
    ratio = fleet_median / raw_median
    print(f"rounds: {args.rounds} (3 objects applied + wait until ready, one sim cluster)")
    print(f"fleet apply+wait   median {fleet_median * 1000:8.1f} ms   (min {min(fleet_times) * 1000:.1f})")
    print(f"raw client         median {raw_median * 1000:8.1f} ms   (min {min(raw_times) * 1000:.1f})")
    print(f"ratio fleet/raw    {ratio:.2f}   (target <= 1.2)")
    by_type = dict(sorted((k, v // args.rounds) for k, v in kinds.items()))
    print(
        f"API requests per fleet apply (fresh client, excluding the readiness watch streams): "
        f"{statistics.median(requests_per_apply):.0f}  by type: {by_type}"
    )
    print(f"API requests per fleet apply again (same client: discovery cached): {statistics.median(warm_requests):.0f}")
    print(
        f"API requests of the raw client per round (excluding its watch stream): {statistics.median(raw_requests):.0f}"
    )
    if ratio > 1.2:
        sys.exit(1)


if __name__ == "__main__":
    main()
