"""Requests per second that ``fleet sim up`` serves to separate client processes (goal: >= 1,000 small req/s).

The server is ``fleet sim up`` in its own process. Two kinds of client, each in processes of their own:

- ``lean``: ``--procs`` processes x ``--threads`` threads of the standard library's ``http.client``
  (keep-alive connections, the kubeconfig's CA and token); about half the CPU per request of urllib3,
  which leaves more of the shared CPUs to the server: the figure is what the server serves.
- ``official``: one process, ``--procs`` x ``--threads`` threads, each with its own official ``kubernetes`` client
  (raw responses, ``_preload_content=False``, so that the client's model classes do not dominate). The
  client's own Python (one GIL) is a limit here: this figure is what one such client process gets.

The requests, against one cluster of a 1-cluster fleet, one cluster of a 1,000-cluster fleet, and
spread over 100 clusters of that fleet:

- ``list pods``: ``GET /api/v1/namespaces/default/pods`` (10 pods),
- ``get deployment``: ``GET /apis/apps/v1/namespaces/default/deployments/web``.

The baseline, in the same run and with the same clients, is the same server stack (``fleet.sim.server``
listener, same TLS setting) answering every request with a fixed JSON document of the same size as the
Deployment: no authentication, no routing, no store. The ratio says what the simulated API costs on
top of HTTP(S) itself.

    .venv/bin/python benchmarks/sim_throughput.py [--procs 2] [--threads 4] [--seconds 5] [--runs 1] [--big 1000]
        [--tls/--no-tls] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import kubernetes
import yaml

T = TypeVar("T")
READY_MARK = "Ctrl-C stops the fleet."
# Client processes start their timed loops together, this long after they are asked to (spawn, imports, warm-up).
SPAWN_TIME = 3.0
PATHS = {
    "list pods": "/api/v1/namespaces/default/pods",
    "get deployment": "/apis/apps/v1/namespaces/default/deployments/web",
}

# The baseline server: fleet.sim.server's listener (the sim's HTTP front and TLS) with a trivial app.
BASELINE_SERVER = textwrap.dedent(
    """
    import json, signal, sys, trio
    from fleet.sim.server import ClusterListener, hypercorn_config
    from fleet.sim.tls import CertificateAuthority, server_context

    size, kubeconfig, tls = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "tls"
    body = json.dumps({"kind": "Fixed", "data": "x" * max(0, size - 26)}).encode()

    async def app(scope, receive, send, conn):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    async def main():
        ca = CertificateAuthority()
        context = server_context(ca, ca.issue("baseline", server=True)) if tls else None
        listener = ClusterListener(app, hypercorn_config(), context)
        cluster = {"server": listener.url}
        if tls:
            import base64
            cluster["certificate-authority-data"] = base64.b64encode(ca.cert_pem).decode()
        with open(kubeconfig, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "b", "cluster": cluster}],
                       "users": [{"name": "b", "user": {"token": "baseline"}}],
                       "contexts": [{"name": "b", "context": {"cluster": "b", "user": "b"}}],
                       "current-context": "b"}, f)
        print("serving", flush=True)
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listener.run)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    trio.run(main)
    """
)


@dataclass
class Result:
    name: str
    client: str
    requests: int
    errors: int
    rate: float
    server_cpu: float  # seconds of CPU the server process spent on the run
    client_cpu: float  # seconds of CPU the client processes spent in their timed loops

    @property
    def cpu_per_request(self) -> float:
        return self.server_cpu / max(1, self.requests)

    @property
    def client_cpu_per_request(self) -> float:
        return self.client_cpu / max(1, self.requests)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    """Where a lean client sends its requests (read from a kubeconfig)."""

    server: str
    ca_pem: str | None
    token: str

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Target:
        config = yaml.safe_load(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        ca = cluster.get("certificate-authority-data")
        return cls(
            server=cluster["server"],
            ca_pem=base64.b64decode(ca).decode() if ca else None,
            token=config["users"][0]["user"]["token"],
        )


@contextmanager
def fleet_process(clusters: int, tls: bool) -> Iterator[tuple[Path, int]]:
    """``fleet sim up`` in its own process; yields its output directory and process id."""
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
            yield out, proc.pid
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
            proc.stdout.close()


@contextmanager
def baseline_process(body_size: int, tls: bool) -> Iterator[tuple[Path, int]]:
    """The baseline server in its own process; yields a kubeconfig for it and its process id."""
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        kubeconfig = Path(tmp) / "baseline.yaml"
        command = [sys.executable, "-c", BASELINE_SERVER, str(body_size), str(kubeconfig), "tls" if tls else "plain"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        try:
            if proc.stdout.readline().strip() != "serving":
                raise RuntimeError("the baseline server exited before serving")
            yield kubeconfig, proc.pid
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
            proc.stdout.close()


def prepare(kubeconfig: Path) -> int:
    """10 pods and a Deployment "web" in ``default``; the size of the Deployment's JSON."""
    with kubernetes.config.new_client_from_config(str(kubeconfig)) as api_client:
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


@dataclass(frozen=True)
class Load:
    """What one client process did: successes, errors, their rate, and the CPU seconds it spent."""

    requests: int
    errors: int
    rate: float
    cpu: float


def run_threads(calls: list[Callable[[], object]], seconds: float, start_at: float) -> Load:
    """Call each of ``calls`` in a loop in a thread of its own for ``seconds`` from wall-clock ``start_at``.

    The common start keeps several client processes' windows together.
    """
    counts = [0] * len(calls)
    errors = [0] * len(calls)
    stop = threading.Event()

    def worker(index: int) -> None:
        call = calls[index]
        while not stop.is_set():
            try:
                call()
                counts[index] += 1
            except Exception:
                errors[index] += 1

    for call in calls:
        call()  # warm up: connections, TLS, the client's validators
    time.sleep(max(0.0, start_at - time.time()))
    workers = [threading.Thread(target=worker, args=(i,), name=f"bench-{i}") for i in range(len(calls))]
    started, cpu = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    stop.wait(seconds)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return Load(sum(counts), sum(errors), sum(counts) / elapsed, time.process_time() - cpu)


class LeanConnection:
    """One keep-alive connection of the standard library's ``http.client`` (verifying the kubeconfig's CA),
    sending GETs; a connection that failed is opened again for the next one."""

    def __init__(self, target: Target) -> None:
        url = urlsplit(target.server)
        self.headers = {"Authorization": f"Bearer {target.token}", "Accept": "application/json"}
        if target.ca_pem:
            context = ssl.create_default_context(cadata=target.ca_pem)
            self.connect: Callable[[], http.client.HTTPConnection] = lambda: http.client.HTTPSConnection(
                url.hostname or "", url.port, context=context
            )
        else:
            self.connect = lambda: http.client.HTTPConnection(url.hostname or "", url.port)
        self.conn = self.connect()

    def get(self, path: str) -> bytes:
        try:
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = self.connect()
            raise
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return body


class Rotation:
    """Calls that take turns: each call goes to the next of ``calls``."""

    def __init__(self, calls: list[Callable[[], object]]) -> None:
        self.calls = calls
        self.next = 0

    def __call__(self) -> object:
        call = self.calls[self.next]
        self.next = (self.next + 1) % len(self.calls)
        return call()


def deal(items: list[T], parts: int) -> list[list[T]]:
    """``items`` dealt into ``parts`` non-empty shares (items are reused when there are fewer than parts)."""
    return [items[i::parts] or [items[i % len(items)]] for i in range(parts)]


def lean_worker(targets: list[Target], path: str, threads: int, seconds: float, start_at: float) -> Load:
    """One lean client process: ``threads`` threads, each going round its share of the clusters."""
    calls: list[Callable[[], object]] = []
    for share in deal(targets, threads):
        connections = [LeanConnection(t) for t in share]
        calls.append(Rotation([lambda c=c: c.get(path) for c in connections]))
    return run_threads(calls, seconds, start_at)


def measure_lean(
    name: str, server: int, kubeconfigs: list[Path], path: str, procs: int, threads: int, seconds: float
) -> Result:
    targets = [Target.from_kubeconfig(k) for k in kubeconfigs]
    shares = deal(targets, procs)  # so that a spread covers every cluster
    cpu = process_cpu(server)
    with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn")) as pool:
        start_at = time.time() + SPAWN_TIME
        futures = [pool.submit(lean_worker, share, path, threads, seconds, start_at) for share in shares]
        outcomes = [f.result() for f in futures]
    return Result(
        name,
        f"lean {procs}x{threads}",
        sum(o.requests for o in outcomes),
        sum(o.errors for o in outcomes),
        sum(o.rate for o in outcomes),
        process_cpu(server) - cpu,
        sum(o.cpu for o in outcomes),
    )


def _official_call(api_client: kubernetes.client.ApiClient, what: str) -> Callable[[], object]:
    if what == "list pods":
        core = kubernetes.client.CoreV1Api(api_client)
        return lambda: core.list_namespaced_pod("default", _preload_content=False).read()
    apps = kubernetes.client.AppsV1Api(api_client)
    return lambda: apps.read_namespaced_deployment("web", "default", _preload_content=False).read()


def official_worker(kubeconfigs: list[Path], what: str, threads: int, seconds: float, start_at: float) -> Load:
    """One process of official clients: ``threads`` threads, each going round its share of the clusters
    with an ``ApiClient`` for each."""
    shares = [[kubernetes.config.new_client_from_config(str(k)) for k in share] for share in deal(kubeconfigs, threads)]
    try:
        return run_threads([Rotation([_official_call(c, what) for c in share]) for share in shares], seconds, start_at)
    finally:
        for share in shares:
            for c in share:
                c.close()


def measure_official(
    name: str, server: int, kubeconfigs: list[Path], what: str, threads: int, seconds: float
) -> Result:
    cpu = process_cpu(server)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        load = pool.submit(official_worker, kubeconfigs, what, threads, seconds, time.time()).result()
    return Result(
        name, f"official 1x{threads}", load.requests, load.errors, load.rate, process_cpu(server) - cpu, load.cpu
    )


def median_of(runs: int, measure_once: Callable[[], Result]) -> Result:
    """The run with the median rate of ``runs`` (other work on a shared machine comes in bursts)."""
    results = sorted((measure_once() for _ in range(runs)), key=lambda r: r.rate)
    return results[len(results) // 2]


def measure(name: str, server: int, kubeconfigs: list[Path], args: argparse.Namespace) -> list[Result]:
    results = []
    threads = args.threads * args.procs
    for what, path in PATHS.items():
        label = f"{what}: {name}"
        lean = partial(measure_lean, label, server, kubeconfigs, path, args.procs, args.threads, args.seconds)
        official = partial(measure_official, label, server, kubeconfigs, what, threads, args.seconds)
        results += [median_of(args.runs, lean), median_of(args.runs, official)]
    return results


def measure_fleet(clusters: int, spread: int, args: argparse.Namespace) -> tuple[list[Result], int]:
    with fleet_process(clusters, args.tls) as (out, server):
        names = [f"sim-{clusters - 1 - i}" for i in range(spread)]
        kubeconfigs = [out / "kubeconfigs" / f"{n}.yaml" for n in names]
        size = 0
        for kubeconfig in kubeconfigs:
            size = prepare(kubeconfig)
        return measure(f"{spread} of {clusters} cluster(s)", server, kubeconfigs, args), size


def measure_baseline(body_size: int, args: argparse.Namespace) -> dict[str, Result]:
    """The baseline with each client, by client name."""
    with baseline_process(body_size, args.tls) as (kubeconfig, server):
        lean = median_of(
            args.runs,
            lambda: measure_lean("baseline", server, [kubeconfig], "/x", args.procs, args.threads, args.seconds),
        )
        threads = args.threads * args.procs
        official = median_of(
            args.runs,
            lambda: measure_official("baseline", server, [kubeconfig], "get deployment", threads, args.seconds),
        )
    return {lean.client: lean, official.client: official}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=2, help="lean client processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per lean client process")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=1, help="runs of each measurement; the median is shown")
    parser.add_argument("--big", type=int, default=1000, help="clusters of the big fleet")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    small, size = measure_fleet(1, 1, args)
    big, _ = measure_fleet(args.big, 1, args)
    spread, _ = measure_fleet(args.big, min(100, args.big), args)
    baseline = measure_baseline(size, args)
    results = [*small, *big, *spread]

    mode = "TLS" if args.tls else "plain HTTP"
    print(
        f"fleet sim throughput ({mode}; {os.cpu_count()} CPUs shared by server and clients; "
        f"{args.seconds:g} s each, median of {args.runs} run(s))"
    )
    print(
        f"{'scenario':<40}{'client':>14}{'req/s':>8}{'errors':>7}{'vs base':>9}"
        f"{'server us/req':>15}{'client us/req':>15}{'capacity':>10}"
    )
    rows = [(r, f"{r.rate / baseline[r.client].rate:.2f}x") for r in results]
    rows += [(b, "") for b in baseline.values()]
    for r, ratio in rows:
        name = r.name if r.name != "baseline" else f"baseline: fixed {size} B, same stack"
        print(
            f"{name:<40}{r.client:>14}{r.rate:>8.0f}{r.errors:>7}{ratio:>9}"
            f"{r.cpu_per_request * 1e6:>15.0f}{r.client_cpu_per_request * 1e6:>15.0f}{1 / r.cpu_per_request:>10.0f}"
        )
    print(
        "lean: http.client threads in separate processes; official: one process of kubernetes clients, whose own CPU\n"
        "(one GIL: at most 1e6 / client us/req requests per second) limits it. server/client us/req: CPU per request\n"
        "of the server process / of the client processes; capacity: the requests per second one fully busy core of\n"
        "the server would serve at that cost (what the server could give clients that keep up)."
    )
    if args.json:
        figures = {
            "mode": mode,
            "results": [r.__dict__ for r in results],
            "baseline": [b.__dict__ for b in baseline.values()],
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
