"""``SimFleet``: N simulated clusters in one process, on their own trio loop, as a context manager.

The fleet's trio loop runs on a daemon thread; the Python API talks to it with ``trio.from_thread``.
On entry every cluster is listening and its kubeconfig is written; on exit the loop is cancelled
(controllers, kubelets, listeners, connections) and the thread joined.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import random
import secrets
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import trio
import yaml

from fleet.sim.api_app import ClusterApp, ClusterRuntime
from fleet.sim.api_control import ControlApp
from fleet.sim.auth import ADMIN_USER, Authenticator
from fleet.sim.cluster import ClusterState, ContainerOutput, SimConfig
from fleet.sim.controllers import bootstrap, run_controllers
from fleet.sim.faults import Faults
from fleet.sim.requestlog import RequestRecord
from fleet.sim.server import ClusterListener, hypercorn_config
from fleet.sim.tls import CertificateAuthority, KeyPair, server_context

log = logging.getLogger(__name__)

T = TypeVar("T")
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
REGIONS = ("sim-a", "sim-b", "sim-c")

try:
    _Dumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - libyaml missing
    _Dumper = yaml.SafeDumper


RESTART_DELAYS = (0.1, 0.5, 2.0, 5.0)


async def supervised(service: Callable[[ClusterState], Awaitable[None]], state: ClusterState, what: str) -> None:
    """Run one of a cluster's services; a crash is logged and the service restarted after a pause.

    A bug in a controller or the kubelet must not take the API (or the fleet's other clusters) down
    with it, as on a real control plane; the log says what crashed.
    """
    crashes = 0
    while True:
        try:
            await service(state)
            return
        except Exception:
            delay = RESTART_DELAYS[min(crashes, len(RESTART_DELAYS) - 1)]
            crashes += 1
            log.exception("%s: the %s crashed (%d times); restarting it in %s s", state.name, what, crashes, delay)
        await trio.sleep(delay)


async def run_services(state: ClusterState, listener: ClusterListener, services: bool) -> None:
    """Serve one cluster: its listener, and (with ``services``) its controllers and kubelet."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(listener.run, name=f"{state.name} listener")
        if services:
            nursery.start_soon(supervised, run_controllers, state, "controllers", name=f"{state.name} controllers")
            nursery.start_soon(supervised, _kubelet, state, "kubelet", name=f"{state.name} kubelet")


async def _kubelet(state: ClusterState) -> None:
    from fleet.sim.kubelet import run_kubelet

    await run_kubelet(state)


def switch_faults(runtime: ClusterRuntime, listener: ClusterListener, faults: Faults) -> None:
    """Give a cluster new faults (on the sim thread); ``down`` closes or reopens its listener at once."""
    runtime.faults = faults
    runtime.state.unready = faults.notready
    listener.set_down(faults.down)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class SimCluster:
    """One simulated cluster, seen from the thread that started the fleet."""

    def __init__(self, fleet: SimFleet, runtime: ClusterRuntime, listener: ClusterListener) -> None:
        self._fleet = fleet
        self._runtime = runtime
        self._listener = listener
        self.name = runtime.state.name
        self.server = listener.url
        self.token = runtime.auth.admin_token
        self.kubeconfig_path = fleet.out_dir / "kubeconfigs" / f"{self.name}.yaml"

    def __repr__(self) -> str:
        return f"SimCluster({self.name!r}, {self.server!r})"

    @property
    def port(self) -> int:
        return self._listener.port

    # -- kubeconfig ------------------------------------------------------------------------------

    def kubeconfig(self, *, token: str | None = None, client_cert: KeyPair | None = None) -> dict[str, Any]:
        """A kubeconfig (as a dict) with one context named after the cluster."""
        cluster: dict[str, Any] = {"server": self.server}
        if self._fleet.ca is not None:
            cluster["certificate-authority-data"] = _b64(self._fleet.ca.cert_pem)
        user: dict[str, Any]
        if client_cert is not None:
            user = {"client-certificate-data": _b64(client_cert.cert_pem), "client-key-data": _b64(client_cert.key_pem)}
        else:
            user = {"token": token or self.token}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": cluster}],
            "users": [{"name": f"{self.name}-admin", "user": user}],
            "contexts": [
                {
                    "name": self.name,
                    "context": {"cluster": self.name, "user": f"{self.name}-admin", "namespace": "default"},
                }
            ],
            "current-context": self.name,
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path, **kwargs: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(yaml.dump(self.kubeconfig(**kwargs), Dumper=_Dumper, sort_keys=False))
        return path

    def client_cert_kubeconfig(self, user: str = ADMIN_USER) -> Path:
        """Issue a client certificate this cluster accepts and write a kubeconfig that uses it."""
        if self._fleet.ca is None:
            raise RuntimeError(f"{self.name}: client certificates need TLS (SimFleet(tls=True))")
        pair = self._fleet.ca.issue(user, server=False, organization=self.name)
        self.call(lambda _state: self._runtime.auth.trust_certificate(pair.fingerprint, user))
        path = (
            self._fleet.out_dir
            / "kubeconfigs"
            / f"{self.name}-cert-{len(list(self.kubeconfig_path.parent.glob(self.name + '-cert-*')))}.yaml"
        )
        return self.write_kubeconfig(path, client_cert=pair)

    # -- running things on the sim thread --------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(state, *args)`` on the sim thread (where the cluster's state lives); return its result."""
        return self._fleet.run_sync(fn, self._runtime.state, *args)

    def requests(self) -> list[RequestRecord]:
        return self._fleet.run_sync(self._runtime.log.records)

    def container_outputs(self) -> list[ContainerOutput]:
        """What every container run that ended wrote (real containers; the newest 20,000 runs), pods
        deleted since included: what a client following their logs must have seen."""
        return self._fleet.run_sync(lambda: list(self._runtime.state.outputs))

    def clear_requests(self) -> None:
        self._fleet.run_sync(self._runtime.log.clear)

    def set_faults(self, faults: Faults) -> None:
        """Switch this cluster's faults; ``down`` takes effect before this returns."""

        self._fleet.run_sync(switch_faults, self._runtime, self._listener, faults)

    @property
    def faults(self) -> Faults:
        return self._runtime.faults

    def issue_token(self, ttl: float | None = None, user: str = ADMIN_USER) -> str:
        return self._fleet.run_sync(self._runtime.auth.issue_token, ttl, user)

    def revoke_token(self, token: str) -> None:
        self._fleet.run_sync(self._runtime.auth.revoke_token, token)

    def add_authenticator(self, fn: Authenticator) -> None:
        self._fleet.run_sync(self._runtime.auth.add_authenticator, fn)


class SimFleet:
    """N simulated clusters served on 127.0.0.1, one port each. Use as a context manager."""

    def __init__(
        self,
        clusters: int = 3,
        *,
        tls: bool = True,
        out_dir: Path | None = None,
        config: SimConfig | None = None,
        prefix: str = "sim",
        services: bool = True,
        control: bool = False,
        names: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> None:
        """``names`` gives the clusters their names (and their number) instead of ``<prefix>-<i>``;
        ``seed`` makes each cluster's fault draws repeatable (the same seed, the same draws)."""
        self.names = list(names) if names is not None else [f"{prefix}-{i}" for i in range(clusters)]
        self.size = len(self.names)
        self.seed = seed
        self.tls = tls
        self.config = config or SimConfig()
        self.prefix = prefix
        self.services = services
        self.control = control
        self._control_url = ""
        self._control_token = secrets.token_urlsafe(24)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._out_dir = out_dir
        self.ca: CertificateAuthority | None = None
        self.clusters: list[SimCluster] = []
        self._by_name: dict[str, SimCluster] = {}
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._error: BaseException | None = None

    @property
    def out_dir(self) -> Path:
        assert self._out_dir is not None, "the fleet is not started"
        return self._out_dir

    @property
    def inventory_path(self) -> Path:
        return self.out_dir / "inventory.yaml"

    @property
    def control_path(self) -> Path:
        """Where ``SimFleet(control=True)`` writes its control endpoint's address and token."""
        return self.out_dir / "control.json"

    def __getitem__(self, name: str) -> SimCluster:
        return self._by_name[name]

    def __iter__(self) -> Iterator[SimCluster]:
        return iter(self.clusters)

    def __len__(self) -> int:
        return len(self.clusters)

    # -- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> SimFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._out_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fleet-sim-")
            self._out_dir = Path(self._tmp.name)
        self._out_dir.mkdir(parents=True, exist_ok=True)
        ssl_context = None
        if self.tls:
            self.ca = CertificateAuthority()
            ssl_context = server_context(self.ca, self.ca.issue("fleet-sim", server=True))
        ready = threading.Event()
        runtimes: list[tuple[ClusterRuntime, ClusterListener]] = []
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready, runtimes, ssl_context), name="fleet-sim", daemon=True
        )
        self._thread.start()
        if not ready.wait(START_TIMEOUT) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the simulated fleet did not start: {self._error!r}")
        for runtime, listener in runtimes:
            cluster = SimCluster(self, runtime, listener)
            self.clusters.append(cluster)
            self._by_name[cluster.name] = cluster
            cluster.write_kubeconfig(cluster.kubeconfig_path)
        self._write_inventory()
        if self.control:
            self.control_path.touch(mode=0o600)
            self.control_path.write_text(json.dumps({"url": self._control_url, "token": self._control_token}))

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            if self._token is not None and self._cancel is not None and thread.is_alive():
                with contextlib.suppress(trio.RunFinishedError):
                    trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
            thread.join(STOP_TIMEOUT)
            if thread.is_alive():
                log.error("the simulated fleet did not stop within %s s", STOP_TIMEOUT)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        error, self._error = self._error, None
        if error is not None:
            raise RuntimeError("the simulated fleet failed") from error

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous ``fn(*args)`` on the sim thread and return its result."""
        if self._token is None:
            raise RuntimeError("the simulated fleet is not running")
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    # -- the sim thread --------------------------------------------------------------------------

    def _thread_main(
        self, ready: threading.Event, out: list[tuple[ClusterRuntime, ClusterListener]], ssl_context: Any
    ) -> None:
        try:
            trio.run(self._main, ready, out, ssl_context)
        except BaseException as e:  # reported to the starting thread by start()/stop()
            log.exception("the simulated fleet failed")
            self._error = e
            ready.set()

    async def _main(
        self, ready: threading.Event, out: list[tuple[ClusterRuntime, ClusterListener]], ssl_context: Any
    ) -> None:
        self._token = trio.lowlevel.current_trio_token()
        config = hypercorn_config()
        with trio.CancelScope() as self._cancel:
            async with trio.open_nursery() as nursery:
                for name in self.names:
                    state = ClusterState(name, self.config)
                    bootstrap(state)
                    runtime = ClusterRuntime(state, auth=state.auth)
                    if self.seed is not None:
                        runtime.rng = random.Random(f"{self.seed}/{name}")
                    listener = ClusterListener(ClusterApp(runtime), config, ssl_context)
                    runtime.server_address = f"127.0.0.1:{listener.port}"
                    out.append((runtime, listener))
                    nursery.start_soon(run_services, state, listener, self.services, name=f"cluster {state.name}")
                if self.control:
                    controls = {
                        runtime.state.name: (
                            listener.url,
                            functools.partial(getattr, runtime, "faults"),
                            functools.partial(switch_faults, runtime, listener),
                        )
                        for runtime, listener in out
                    }
                    control = ClusterListener(ControlApp(self._control_token, controls), config, None)
                    self._control_url = control.url
                    nursery.start_soon(control.run, name="control endpoint")
                ready.set()
                await trio.sleep_forever()

    def _write_inventory(self) -> None:
        clusters = [
            {
                "name": c.name,
                "tenant": f"tenant-{i}",
                "region": REGIONS[i % len(REGIONS)],
                "labels": {"tier": "gold" if i % 2 == 0 else "silver"},
                "connection": {"kubeconfig": f"file:kubeconfigs/{c.name}.yaml", "context": c.name},
            }
            for i, c in enumerate(self.clusters)
        ]
        doc = {"defaults": {"labels": {"env": "sim"}}, "clusters": clusters}
        self.inventory_path.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False))
