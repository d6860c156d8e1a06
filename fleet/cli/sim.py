"""``fleet sim``: run a simulated fleet (``up``), inject faults (``fault``), show them (``faults``).

``fleet sim up`` writes one kubeconfig per cluster and an inventory into ``--dir`` and a
``control.json`` that ``fleet sim fault`` uses to reach the running fleet's control endpoint.
``fleet demo`` runs a release across a simulated fleet.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from fleet.errors import ClusterError, InputError, Location

# fleet.sim (servers, controllers, kubelet) is imported by the commands that run it, not at start-up:
# every other fleet command would pay for it.

app = typer.Typer(help="The simulated fleet: N Kubernetes API servers on 127.0.0.1.", no_args_is_help=True)
console = Console()

DEFAULT_DIR = Path(".fleet/sim")
_SHOWN_CLUSTERS = 20

ClustersOpt = typer.Option(
    3, "--clusters", "-N", min=1, max=5000, metavar="N", help="How many clusters to start."
)
TlsOpt = typer.Option(True, "--tls/--no-tls", help="Serve HTTPS with a generated CA (default) or plain HTTP.")
OutOpt = typer.Option(
    DEFAULT_DIR, "--dir", "--out", "-d", metavar="DIR", help="Where kubeconfigs, inventory and control file go."
)
GpuNodesOpt = typer.Option(
    0,
    "--gpu-nodes",
    min=0,
    max=100,
    metavar="N",
    help="Nodes of a GPU pool in each cluster: nvidia.com/gpu: 4 each, label nvidia.com/gpu.present=true, "
    "taint nvidia.com/gpu=present:NoSchedule (0: the last ordinary node has GPUs, untainted).",
)
DirOpt = typer.Option(DEFAULT_DIR, "--dir", "-d", metavar="DIR", help="The --dir of `fleet sim up`.")
PathOpt = typer.Option([], "--path", metavar="PREFIX", help="Only requests under this path prefix (repeatable).")
MethodOpt = typer.Option([], "--method", metavar="METHOD", help="Only requests of this HTTP method (repeatable).")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="sim")


@app.command("up")
def up(
    clusters: int = ClustersOpt,
    directory: Path = OutOpt,
    tls: bool = TlsOpt,
    gpu_nodes: int = GpuNodesOpt,
) -> None:
    """Start the clusters, write their kubeconfigs and an inventory, and serve until Ctrl-C."""
    started = time.perf_counter()
    from fleet.sim import SimFleet
    from fleet.sim.cluster import SimConfig

    with SimFleet(clusters, tls=tls, out_dir=directory, control=True, config=SimConfig(gpu_nodes=gpu_nodes)) as sim:
        elapsed = time.perf_counter() - started
        table = Table(title=f"{clusters} simulated clusters up in {elapsed:.2f} s")
        table.add_column("cluster")
        table.add_column("server")
        table.add_column("kubeconfig")
        for cluster in sim.clusters[:_SHOWN_CLUSTERS]:
            table.add_row(cluster.name, cluster.server, str(cluster.kubeconfig_path))
        if clusters > _SHOWN_CLUSTERS:
            table.add_row("…", f"{clusters - _SHOWN_CLUSTERS} more", str(directory / "kubeconfigs"))
        console.print(table)
        console.print(f"inventory: [bold]{sim.inventory_path}[/bold]")
        if gpu_nodes:
            console.print(
                f"GPU pool:  {gpu_nodes} node(s) per cluster with nvidia.com/gpu, "
                "nodeSelector nvidia.com/gpu.present=true, taint nvidia.com/gpu=present:NoSchedule"
            )
        if tls:
            console.print(f"try:       KUBECONFIG={sim.clusters[0].kubeconfig_path} kubectl get namespaces")
        else:
            console.print("note:      kubectl sends no bearer token over plain HTTP; drop --no-tls to use kubectl")
        console.print(f"faults:    fleet sim fault --dir {directory} --cluster {sim.clusters[0].name} --latency 0.2")
        console.print("Ctrl-C stops the fleet.")
        _wait_for_interrupt()
    console.print("stopped")


def _wait_for_interrupt() -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- fault -----------------------------------------------------------------------------------------


def _control(directory: Path) -> tuple[str, str]:
    path = directory / "control.json"
    try:
        data = json.loads(path.read_text())
        return str(data["url"]), str(data["token"])
    except FileNotFoundError:
        raise InputError(
            "no running simulated fleet writes here; start one with `fleet sim up --dir DIR`",
            location=Location(file=str(path)),
        ) from None
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"not a control file of `fleet sim up`: {e}", location=Location(file=str(path))) from e


def _call(directory: Path, method: str, path: str, body: Any = None) -> Any:
    url, token = _control(directory)
    data = None if body is None else json.dumps(body).encode()
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        detail = json.loads(e.read() or b"{}").get("error", e.reason)
        raise InputError(f"the simulated fleet refused: {detail}") from e
    except urllib.error.URLError as e:
        raise ClusterError(
            f"the simulated fleet at {url} does not answer ({e.reason}); is `fleet sim up` running?"
        ) from e


def _describe(faults: dict[str, Any]) -> str:
    """The faults that differ from a healthy cluster's, or "healthy"."""
    from fleet.sim.faults import Faults, faults_to_mapping

    healthy = faults_to_mapping(Faults())
    changed = {k: v for k, v in faults.items() if healthy.get(k) != v}
    if not any(k not in ("error_codes", "retry_after", "paths", "methods") for k in changed):
        return "healthy"
    return ", ".join(f"{k}={v}" for k, v in changed.items())


@app.command("fault")
def fault(
    cluster: str = typer.Option(..., "--cluster", metavar="CLUSTER", help="Cluster name, e.g. sim-0."),
    directory: Path = DirOpt,
    latency: float = typer.Option(0.0, min=0, metavar="SECONDS", help="Seconds added to every response."),
    error_rate: float = typer.Option(0.0, min=0, max=1, metavar="SHARE", help="Share of requests answered 500/503."),
    error_codes: str = typer.Option(
        "500,503", metavar="CODES", help="Codes the error rate picks from, comma-separated."
    ),
    throttle_rate: float = typer.Option(0.0, min=0, max=1, metavar="SHARE", help="Share of requests answered 429."),
    retry_after: int = typer.Option(1, min=0, metavar="SECONDS", help="Retry-After seconds of a 429."),
    drop_rate: float = typer.Option(0.0, min=0, max=1, metavar="SHARE", help="Share of responses cut off mid-body."),
    drop_watch_after: float | None = typer.Option(
        None, min=0, metavar="SECONDS", help="Cut every watch after this many seconds."
    ),
    down: bool = typer.Option(False, "--down", help="Close the cluster's port (connection refused)."),
    stall: bool = typer.Option(False, "--stall", help="Answer nothing until the client gives up."),
    notready: bool = typer.Option(False, "--notready", help="Containers that start now never become ready."),
    path: list[str] = PathOpt,
    method: list[str] = MethodOpt,
) -> None:
    """Set a running cluster's faults (all at once: options not given are cleared; no options = healthy)."""
    try:
        codes = [int(code) for code in error_codes.split(",") if code.strip()]
    except ValueError:
        raise InputError(
            f"expected comma-separated HTTP codes, got {error_codes!r}", location=Location(field="--error-codes")
        ) from None
    faults = {
        "latency": latency,
        "error_rate": error_rate,
        "error_codes": codes,
        "throttle_rate": throttle_rate,
        "retry_after": retry_after,
        "drop_rate": drop_rate,
        "drop_watch_after": drop_watch_after,
        "down": down,
        "stall": stall,
        "notready": notready,
        "paths": path,
        "methods": method,
    }
    result = _call(directory, "PUT", f"/clusters/{cluster}/faults", faults)
    console.print(f"{result['name']}: {_describe(result['faults'])}")


@app.command("faults")
def list_faults(
    directory: Path = DirOpt,
) -> None:
    """Show each running cluster's faults."""
    table = Table("cluster", "server", "faults")
    for entry in _call(directory, "GET", "/clusters"):
        table.add_row(entry["name"], entry["server"], _describe(entry["faults"]))
    console.print(table)
