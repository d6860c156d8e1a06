"""Requests per second that ``fleet sim up`` serves to a separate client process (goal: >= 1,000 small req/s).

The server is ``fleet sim up`` in its own process; this process is the client: ``--threads`` threads,
each with its own official ``kubernetes`` client (raw responses, ``_preload_content=False``, so that the
client's model classes do not dominate), sending for ``--seconds`` each:

- ``list pods``: ``GET /api/v1/namespaces/default/pods`` (10 pods),
- ``get deployment``: ``GET /apis/apps/v1/namespaces/default/deployments/web``,

against one cluster of a 1-cluster fleet, one cluster of a 1,000-cluster fleet, and spread over 100
clusters of that fleet. The baseline, in the same run, is a trivial hypercorn app (trio worker, the
same server stack) answering a fixed JSON document of the same size: the ratio says what the
simulated API costs on top of HTTP itself.

    .venv/bin/python benchmarks/sim_throughput.py [--threads 8] [--seconds 5] [--big 1000] [--tls/--no-tls]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import kubernetes

READY_MARK = "Ctrl-C stops the fleet."

TRIVIAL_APP = textwrap.dedent(
    """
    import sys, trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    body = b"x" * int(sys.argv[1])

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rpartition(".")[2]
                await send({"type": f"{message['type']}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    config = Config()
    config.bind = ["127.0.0.1:" + sys.argv[2]]
    config.accesslog = None
    print("serving", flush=True)
    trio.run(serve, app, config)
    """
)


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@contextmanager
def fleet_process(clusters: int, tls: bool) -> Iterator[Path]:
    """``fleet sim up`` in its own process; yields its output directory."""
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        out = Path(tmp) / "fleet"
        command = [sys.executable, "-m", "fleet", "sim", "up", "--clusters", str(clusters), "--out", str(out)]
        command.append("--tls" if tls else "--no-tls")
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if READY_MARK in line:
                    break
            else:
                raise RuntimeError("fleet sim up exited before serving")
            yield out
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
            proc.stdout.close()


@contextmanager
def trivial_process(body_size: int) -> Iterator[str]:
    """The baseline server; yields its URL."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", TRIVIAL_APP, str(body_size), str(port)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        proc.stdout.readline()
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        proc.stdout.close()


def _client(kubeconfig: Path) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(str(kubeconfig))


def prepare(kubeconfig: Path) -> int:
    """10 pods and a Deployment "web" in ``default``; the size of the Deployment's JSON."""
    with _client(kubeconfig) as api_client:
        core = kubernetes.client.CoreV1Api(api_client)
        apps = kubernetes.client.AppsV1Api(api_client)
        for i in range(10):
            pod = {
                "metadata": {"name": f"p{i}", "labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            }
            core.create_namespaced_pod("default", pod)
        labels = {"app": "web"}
        deployment = {
            "metadata": {"name": "web", "labels": labels},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            },
        }
        apps.create_namespaced_deployment("default", deployment)
        return len(apps.read_namespaced_deployment("web", "default", _preload_content=False).read())


def run_load(name: str, calls: list[Callable[[], object]], threads: int, seconds: float) -> Result:
    """Call ``calls`` round-robin from ``threads`` threads for ``seconds``; count successes."""
    counts = [0] * threads
    errors = [0] * threads
    stop = threading.Event()

    def worker(index: int) -> None:
        i = index
        while not stop.is_set():
            try:
                calls[i % len(calls)]()
                counts[index] += 1
            except Exception:
                errors[index] += 1
            i += 1

    workers = [threading.Thread(target=worker, args=(i,), name=f"bench-{i}") for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    stop.wait(seconds)
    stop.set()
    for w in workers:
        w.join()
    return Result(name, sum(counts), sum(errors), time.perf_counter() - started)


def _sim_calls(
    kubeconfigs: list[Path], what: str, threads: int
) -> tuple[list[Callable[[], object]], list[kubernetes.client.ApiClient]]:
    clients = [_client(k) for k in kubeconfigs for _ in range(max(1, threads // len(kubeconfigs)))]
    calls: list[Callable[[], object]] = []
    for api_client in clients:
        if what == "list pods":
            api = kubernetes.client.CoreV1Api(api_client)
            calls.append(lambda api=api: api.list_namespaced_pod("default", _preload_content=False).read())
        else:
            apps = kubernetes.client.AppsV1Api(api_client)
            calls.append(
                lambda apps=apps: apps.read_namespaced_deployment("web", "default", _preload_content=False).read()
            )
    return calls, clients


def measure_fleet(clusters: int, spread: int, tls: bool, threads: int, seconds: float) -> tuple[list[Result], int]:
    results = []
    with fleet_process(clusters, tls) as out:
        names = [f"sim-{clusters - 1 - i}" for i in range(spread)]
        kubeconfigs = [out / "kubeconfigs" / f"{n}.yaml" for n in names]
        size = 0
        for kubeconfig in kubeconfigs:
            size = prepare(kubeconfig)
        for what in ("list pods", "get deployment"):
            calls, clients = _sim_calls(kubeconfigs, what, threads)
            try:
                for call in calls:
                    call()  # warm up: connections, TLS, the client's validators
                label = f"{what}: {spread} of {clusters} cluster(s)"
                results.append(run_load(label, calls, threads, seconds))
            finally:
                for api_client in clients:
                    api_client.close()
    return results, size


def measure_trivial(body_size: int, threads: int, seconds: float) -> Result:
    import urllib3

    with trivial_process(body_size) as url:
        pools = [urllib3.PoolManager() for _ in range(threads)]
        calls: list[Callable[[], object]] = [lambda pool=pool: pool.request("GET", url + "/x").data for pool in pools]
        for call in calls:
            call()
        result = run_load(f"baseline: trivial hypercorn app, {body_size} B", calls, threads, seconds)
        for pool in pools:
            pool.clear()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--big", type=int, default=1000, help="clusters of the big fleet")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    small, size = measure_fleet(1, 1, args.tls, args.threads, args.seconds)
    big, _ = measure_fleet(args.big, 1, args.tls, args.threads, args.seconds)
    spread, _ = measure_fleet(args.big, min(100, args.big), args.tls, args.threads, args.seconds)
    baseline = measure_trivial(size, args.threads, args.seconds)

    mode = "TLS" if args.tls else "plain HTTP"
    print(f"fleet sim throughput ({mode}; client: {args.threads} threads in a separate process; {os.cpu_count()} CPUs)")
    print(f"{'scenario':<52}{'req/s':>10}{'errors':>8}{'vs baseline':>13}")
    for r in [*small, *big, *spread, baseline]:
        print(f"{r.name:<52}{r.rate:>10.0f}{r.errors:>8}{r.rate / baseline.rate:>12.2f}x")
    note = "(the baseline is plain HTTP: no TLS, no auth, no routing)" if args.tls else ""
    print(note)


if __name__ == "__main__":
    main()
