"""Pod step benchmark on fleet.sim: ``echo hi`` end to end against a raw-client baseline (same create,
wait, read logs, delete sequence, same run), 100 MB in and out, and 100 pod steps on 100 clusters at once.

    .venv/bin/python benchmarks/pod_step.py [--runs 15] [--clusters 100] [--megabytes 100]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import trio

from fleet.artifacts import LocalArtifactStore
from fleet.kube.client import KubeClient
from fleet.pods import PodRunContext, PodTask, run_pod_task
from fleet.sim import SimFleet

NAMESPACE = "default"


async def raw_echo(client: KubeClient) -> float:
    """The baseline: create a pod, watch it to Succeeded, read its log, delete it."""
    name = f"raw-{uuid.uuid4().hex[:8]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "echo hi"]}],
        },
    }
    start = time.perf_counter()
    await client.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", body=pod)
    async for event in client.watch(f"/api/v1/namespaces/{NAMESPACE}/pods", {"fieldSelector": f"metadata.name={name}"}):
        if event.object.get("status", {}).get("phase") in {"Succeeded", "Failed"}:
            break
    text = await client.request_bytes("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/log", accept="*/*")
    assert text.strip() == b"hi", text
    await client.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
    return time.perf_counter() - start


async def fleet_echo(client: KubeClient, store: LocalArtifactStore, cluster: str, *, new_run: bool = True) -> float:
    """fleet's pod step. ``new_run``: as the engine runs a step of a run it started (no resume lookup);
    otherwise as in a resumed run (one list request first, looking for a pod to reattach to)."""
    task = PodTask.model_validate({"image": "busybox", "commands": ["echo hi"]})
    context = PodRunContext(
        run_id=uuid.uuid4().hex[:8], cluster=cluster, step_id="echo", artifacts=store, new_run=new_run
    )
    start = time.perf_counter()
    await run_pod_task(client, task, context=context)
    return time.perf_counter() - start


async def big_file(client: KubeClient, store: LocalArtifactStore, cluster: str, megabytes: int, tmp: Path) -> None:
    size = megabytes * 1024 * 1024
    source = tmp / "big.bin"
    block = hashlib.sha256(b"bench").digest() * 32768
    with source.open("wb") as sink:
        for _ in range(megabytes):
            sink.write(block)
    ref = await store.put_file("bench/big.bin", source)
    task = PodTask.model_validate(
        {
            "image": "busybox",
            "commands": ["cp big.bin out.bin"],
            "inputFiles": {"big.bin": ref.uri},
            "outputFiles": ["out.bin"],
        }
    )
    context = PodRunContext(run_id=uuid.uuid4().hex[:8], cluster=cluster, step_id="big", artifacts=store)
    start = time.perf_counter()
    result = await run_pod_task(client, task, context=context)
    elapsed = time.perf_counter() - start
    assert result.files["out.bin"].sha256 == ref.sha256
    print(
        f"{megabytes} MB in and out: {elapsed:.2f} s end to end, {2 * size / elapsed / 1e6:.0f} MB/s moved (in + out)"
    )


async def all_at_once(clients: list[tuple[str, KubeClient]], store: LocalArtifactStore | None) -> None:
    """``echo hi`` on every cluster at once: the raw client when ``store`` is None, else fleet's pod step."""
    durations: list[float] = []
    failures: list[str] = []

    async def one(name: str, client: KubeClient) -> None:
        try:
            durations.append(await (raw_echo(client) if store is None else fleet_echo(client, store, name)))
        except Exception as e:
            failures.append(f"{name}: {e}")

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for name, client in clients:
            nursery.start_soon(one, name, client)
    wall = time.perf_counter() - start
    label = "raw client" if store is None else "fleet pod step"
    print(f"{len(clients)} x echo hi on {len(clients)} clusters at once, {label}: {wall:.2f} s wall,", end=" ")
    print(f"per step median {statistics.median(durations):.3f} s, max {max(durations):.3f} s, failures {len(failures)}")
    for failure in failures[:5]:
        print("  failed:", failure)


async def main(sim: SimFleet, runs: int, megabytes: int, tmp: Path) -> None:
    store = LocalArtifactStore(tmp / "artifacts")
    clients = [(c.name, KubeClient.from_kubeconfig(c.kubeconfig_path, context=c.name)) for c in sim.clusters]
    try:
        name, client = clients[0]
        await raw_echo(client)
        await fleet_echo(client, store, name)
        raw, ours, resumed = [], [], []
        for _ in range(runs):
            raw.append(await raw_echo(client))
            ours.append(await fleet_echo(client, store, name))
            resumed.append(await fleet_echo(client, store, name, new_run=False))
        raw_median, fleet_median = statistics.median(raw), statistics.median(ours)
        resumed_median = statistics.median(resumed)
        print(f"echo hi, {runs} runs each: raw client median {raw_median * 1000:.1f} ms,", end=" ")
        print(f"fleet pod step median {fleet_median * 1000:.1f} ms", end=" ")
        print(f"(in a resumed run, with the resume lookup: {resumed_median * 1000:.1f} ms)")
        print(f"ratio fleet / raw: {fleet_median / raw_median:.2f} (target <= 1.2);", end=" ")
        print(f"resumed run: {resumed_median / raw_median:.2f}")
        await big_file(client, store, name, megabytes, tmp)
        await all_at_once(clients, None)
        await all_at_once(clients, store)
    finally:
        for _, c in clients:
            c.close()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    # Every pod step holds long-lived streams (a pod watch, a log follow per container), each in a worker
    # thread: 100 steps at once need more than the default 40 threads.
    os.environ.setdefault("FLEET_THREADS", str(max(40, 4 * args.clusters)))
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        started = time.perf_counter()
        with SimFleet(clusters=args.clusters, tls=True, out_dir=Path(tmp) / "sim") as sim:
            print(f"sim with {args.clusters} clusters up in {time.perf_counter() - started:.1f} s")
            trio.run(main, sim, args.runs, args.megabytes, Path(tmp))


if __name__ == "__main__":
    cli()
