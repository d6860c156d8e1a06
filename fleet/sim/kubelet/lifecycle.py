"""One bound pod's life on its node: pull, init containers in order, sidecars, containers, restarts,
the active deadline, and graceful deletion (SIGTERM, then SIGKILL after the grace period).

A ``PodWorker`` owns the pod's status while the pod runs and writes it back to the store after every
change. Containers with a ``command`` or ``args`` run as real processes (``runtime``); those without
are virtual: running, and ready after ``SimConfig.ready_delay``, until stopped.
"""

from __future__ import annotations

import copy
import logging
import shutil
import signal
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import trio

from fleet.sim.cluster import ClusterState, ContainerOutput
from fleet.sim.kubelet.cgroups import MemoryCgroup
from fleet.sim.kubelet.env import EnvError, container_env, expand
from fleet.sim.kubelet.logs import ContainerLogs, rotate_bytes_of
from fleet.sim.kubelet.podstatus import ContainerRecord, PodView, qos_class
from fleet.sim.kubelet.quantity import parse_quantity
from fleet.sim.kubelet.runtime import ContainerRun, Holder, Mount, ProcessRun, RuntimeRefused, VirtualRun
from fleet.sim.kubelet.volumes import VolumeError, prepare_volumes
from fleet.sim.model import JsonObject

log = logging.getLogger(__name__)

FAILING_IMAGE_MARK = "fail"
# Restart back-off: real kubelets start at 10 s and cap at 300 s; the sim is 20 times faster.
BACKOFF_START = 0.5
BACKOFF_CAP = 15.0
DEFAULT_GRACE = 30
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
# The kubelet's limits for termination messages and their fallback to the log.
TERMINATION_MESSAGE_LIMIT = 4096
TERMINATION_LOG_LINES = 80
TERMINATION_LOG_BYTES = 2048


def is_real(container: Mapping[str, Any]) -> bool:
    """A container with a command or args runs as a process; one without is virtual."""
    return bool(container.get("command") or container.get("args"))


def image_fails(image: str) -> bool:
    """Images whose name contains ``fail`` never pull (documented in docs/sim.md)."""
    return FAILING_IMAGE_MARK in image


class PodWorker:
    """Runs one pod on its node until the pod is deleted."""

    def __init__(
        self, state: ClusterState, pod: JsonObject, host_ip: str, pod_ip: str, sim_root: Callable[[], Path]
    ) -> None:
        self.state = state
        self.pods = state.rt("", "Pod")
        meta = pod["metadata"]
        self.namespace: str = meta.get("namespace") or "default"
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.pod = pod
        self.spec: JsonObject = pod.get("spec") or {}
        # Pods with only virtual containers never touch the disk: the sim's directory is made on first use.
        self._sim_root = sim_root
        self.view = PodView(host_ip=host_ip, pod_ip=pod_ip, qos=qos_class(self.spec))
        self.scheduled_at = self.view.started_at
        self.containers: dict[str, JsonObject] = {}
        self.records: dict[str, ContainerRecord] = {}
        has_init = bool(self.spec.get("initContainers"))
        for c in self.spec.get("initContainers") or []:
            kind: Literal["init", "sidecar", "main"] = "sidecar" if c.get("restartPolicy") == "Always" else "init"
            self._add(c, kind, "PodInitializing" if kind == "init" else "ContainerCreating")
        for c in self.spec.get("containers") or []:
            self._add(c, "main", "PodInitializing" if has_init else "ContainerCreating")
        rotate = rotate_bytes_of(pod)
        self.logs: dict[str, ContainerLogs] = {
            n: ContainerLogs(lambda: self.sandbox / "logs", n, rotate) for n in self.records
        }
        self.runs: dict[str, ContainerRun] = {}
        self.holders: dict[str, Holder] = {}
        self._holder_lock = trio.Lock()
        self._volumes: dict[str, Path] | None = None
        self._touched_disk = False
        self.stopping = False
        self.deleting = False
        self.removed = False
        self.finished = trio.Event()
        self._delete_requested = trio.Event()
        self._grace = DEFAULT_GRACE
        self._changed = trio.Event()

    @property
    def sandbox(self) -> Path:
        return self._sim_root() / "pods" / f"{self.namespace}_{self.name}_{self.uid}"

    def _add(self, container: JsonObject, kind: Literal["init", "sidecar", "main"], reason: str) -> None:
        name = container["name"]
        self.containers[name] = container
        self.records[name] = ContainerRecord(name=name, image=container.get("image", ""), kind=kind, reason=reason)

    # -- requests from the kubelet -----------------------------------------------------------------

    def request_delete(self, grace: int | None) -> None:
        """The pod got a deletionTimestamp: stop it within ``grace`` seconds, then remove it."""
        if not self._delete_requested.is_set():
            self._grace = DEFAULT_GRACE if grace is None else grace
            self._delete_requested.set()

    def force_removed(self) -> None:
        """The pod is already gone from the store: kill everything now."""
        self.removed = True
        self._grace = 0
        self._delete_requested.set()

    def changed(self) -> trio.Event:
        """An event set at the next status change (for waiters such as exec and logs)."""
        return self._changed

    # -- the pod's life ----------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                life = trio.CancelScope()
                nursery.start_soon(self._guarded_lifecycle, life, nursery)
                await self._delete_requested.wait()
                self.deleting = True
                self.stopping = True
                await self._terminate_all(self._grace)
                life.cancel()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._teardown()
            if not self.removed:
                current = self.state.store.get(self.pods, self.namespace, self.name)
                if current is not None and current["metadata"].get("uid") == self.uid:
                    self.state.store.remove(self.pods, self.namespace, self.name)

    async def _guarded_lifecycle(self, scope: trio.CancelScope, nursery: trio.Nursery) -> None:
        with scope:
            deadline = self.spec.get("activeDeadlineSeconds")
            if deadline is not None:
                nursery.start_soon(self._active_deadline, float(deadline), scope)
            await self._lifecycle(nursery)

    async def _lifecycle(self, nursery: trio.Nursery) -> None:
        self.publish()
        policy = self.spec.get("restartPolicy") or "Always"
        for c in self.spec.get("initContainers") or []:
            if c.get("restartPolicy") == "Always":
                started = trio.Event()
                nursery.start_soon(self._run_with_restarts, c, "Always", started)
                await started.wait()
                continue
            code = await self._run_with_restarts(c, "Never" if policy == "Never" else "OnFailure", None)
            if self.stopping:
                return
            if code != 0:
                await self._finish("Failed")
                return
        self.view.initialized = True
        for record in self.records.values():
            if record.kind == "main" and record.state == "waiting" and record.reason == "PodInitializing":
                record.set_waiting("ContainerCreating")
        self.publish()
        codes: dict[str, int] = {}

        async def run_main(c: JsonObject) -> None:
            codes[c["name"]] = await self._run_with_restarts(c, policy, None)

        async with trio.open_nursery() as mains:
            for c in self.spec.get("containers") or []:
                mains.start_soon(run_main, c)
        if self.stopping:
            return
        await self._stop_sidecars(self._termination_grace())
        await self._finish("Succeeded" if all(code == 0 for code in codes.values()) else "Failed")

    async def _finish(self, phase: str) -> None:
        self.stopping = True
        self.view.phase = phase
        self.publish()
        await self._release_holders()
        self.finished.set()

    async def _active_deadline(self, seconds: float, life: trio.CancelScope) -> None:
        await trio.sleep(seconds)
        if self.stopping:
            return
        self.stopping = True
        self.view.reason = "DeadlineExceeded"
        self.view.message = DEADLINE_MESSAGE
        self.state.record_event(self.pod, "Warning", "DeadlineExceeded", DEADLINE_MESSAGE, "kubelet")
        await self._terminate_all(self._termination_grace())
        life.cancel()
        await self._finish("Failed")

    def _termination_grace(self) -> int:
        return int(self.spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE))

    # -- containers --------------------------------------------------------------------------------

    async def _run_with_restarts(self, c: JsonObject, policy: str, started: trio.Event | None) -> int:
        record = self.records[c["name"]]
        backoff = BACKOFF_START
        while True:
            code = await self._run_once(c, started)
            if self.stopping:
                return code
            if not (policy == "Always" or (policy == "OnFailure" and code != 0)):
                return code
            record.archive()
            self.logs[record.name].archive()
            record.set_waiting(
                "CrashLoopBackOff",
                f"back-off {backoff:g}s restarting failed container={record.name} "
                f"pod={self.name}_{self.namespace}({self.uid})",
            )
            self.event(
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {record.name} in pod {self.name}_{self.namespace}({self.uid})",
            )
            self.publish()
            await trio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)

    async def _run_once(self, c: JsonObject, started: trio.Event | None) -> int:
        record = self.records[c["name"]]
        image = record.image
        if image_fails(image):
            await self._fail_pull(record)
        if record.restart_count == 0:
            self.event("Normal", "Pulling", f'Pulling image "{image}"')
            self.event("Normal", "Pulled", f'Successfully pulled image "{image}" in 0s (0s including waiting)')
        else:
            self.event("Normal", "Pulled", f'Container image "{image}" already present on machine')
        run = await self._create(c, record)
        if run is None:
            return record.terminated.exit_code if record.terminated else 128
        record.set_running(f"sim://{uuid.uuid4().hex}")
        held = self._held_unready(record.name)
        record.ready = is_real(c) and not held
        self.event("Normal", "Created", f"Created container: {record.name}")
        self.event("Normal", "Started", f"Started container {record.name}")
        self._on_started()
        self.publish()
        self.runs[record.name] = run
        if started is not None:
            started.set()
        try:
            if not is_real(c):
                with trio.move_on_after(self.state.config.ready_delay):
                    await run.ended.wait()
                if not run.ended.is_set() and not held:
                    record.ready = True
                    self.publish()
            code = await run.wait()
        finally:
            self.runs.pop(record.name, None)
            self.logs[record.name].close()
            self._remember_output(record.name)
        reason = "OOMKilled" if run.oom_killed else ("Completed" if code == 0 else "Error")
        record.set_terminated(code, reason, self._termination_message(c, code))
        self.publish()
        return code

    def _remember_output(self, container: str) -> None:
        log_ = self.logs[container].current
        if log_ is None or log_.path is None:
            return
        labels = dict((self.pod.get("metadata") or {}).get("labels") or {})
        self.state.outputs.append(
            ContainerOutput(self.namespace, self.name, container, labels, tuple(log_.written), log_.count)
        )

    def _held_unready(self, container: str) -> bool:
        """Whether the cluster's ``notready`` fault keeps this container from ever becoming ready (as a
        failing readiness probe would, with its Unhealthy event)."""
        if not self.state.unready:
            return False
        key = f"{self.namespace}/{self.name}"
        if key not in self.state.held_unready:
            self.state.held_unready.append(key)
        self.event("Warning", "Unhealthy", f"Readiness probe failed: {container}: fault injected (notready)")
        return True

    def _termination_message(self, c: JsonObject, code: int) -> str:
        """The container's termination message file, or with FallbackToLogsOnError its last log lines."""
        if not is_real(c):
            return ""
        try:
            with self._termination_log(c["name"]).open("rb") as f:
                message = f.read(TERMINATION_MESSAGE_LIMIT).decode(errors="replace")
        except OSError:
            message = ""
        log_ = self.logs[c["name"]].current
        if message or code == 0 or c.get("terminationMessagePolicy") != "FallbackToLogsOnError" or log_ is None:
            return message
        return log_.tail_text(TERMINATION_LOG_LINES, TERMINATION_LOG_BYTES)

    def _termination_log(self, name: str) -> Path:
        return self.sandbox / "containers" / name / "termination-log"

    def _on_started(self) -> None:
        if self.view.initialized and self.view.phase == "Pending":
            self.view.phase = "Running"

    async def _create(self, c: JsonObject, record: ContainerRecord) -> ContainerRun | None:
        """Start a run of ``c``; None (and the record says why) when it cannot start."""
        if not is_real(c):
            self.logs[record.name].new_run(real=False)
            return VirtualRun()
        self._touched_disk = True
        env = await self._wait_env(c, record)
        try:
            holder = await self._holder(c)
        except (RuntimeRefused, VolumeError, OSError) as e:
            self._cannot_run(record, str(e))
            return None
        argv = [expand(str(a), env) for a in [*(c.get("command") or []), *(c.get("args") or [])]]
        self._termination_log(record.name).write_bytes(b"")
        cgroup = self._memory_cgroup(c)
        log_ = self.logs[record.name].new_run(real=True)
        try:
            return await ProcessRun.start(holder, argv, env, log_, cgroup)
        except OSError as e:
            log_.close()
            if cgroup is not None:
                cgroup.remove()
            self._cannot_run(record, f"failed to start {argv[0]!r}: {e}")
            return None

    def _memory_cgroup(self, c: JsonObject) -> MemoryCgroup | None:
        limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if limit is None:
            return None
        return MemoryCgroup.create(f"{self.state.name}-{uuid.uuid4().hex}", int(parse_quantity(limit)))

    def _cannot_run(self, record: ContainerRecord, message: str) -> None:
        record.set_terminated(128, "ContainerCannotRun", message)
        self.event("Warning", "Failed", f"Error: {message}")
        self.publish()

    async def _wait_env(self, c: JsonObject, record: ContainerRecord) -> dict[str, str]:
        """The container's environment; while a reference is missing, wait for the store to change."""
        while True:
            seen = self.state.store.resource_version
            try:
                return container_env(self.state, self.current_pod(), c)
            except EnvError as e:
                if record.reason != "CreateContainerConfigError":
                    record.set_waiting("CreateContainerConfigError", str(e))
                    self.event("Warning", "Failed", f"Error: {e}")
                    self.publish()
                await self.state.store.wait_changed(seen)

    def current_pod(self) -> JsonObject:
        current = self.state.store.get(self.pods, self.namespace, self.name)
        return current if current is not None and current["metadata"].get("uid") == self.uid else self.pod

    async def _fail_pull(self, record: ContainerRecord) -> None:
        """A failing image: ErrImagePull, then ImagePullBackOff, until the pod is deleted."""
        image = record.image
        self.event("Normal", "Pulling", f'Pulling image "{image}"')
        message = (
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image '
            f'"{image}": not found (fleet.sim never pulls images whose name contains "{FAILING_IMAGE_MARK}")'
        )
        record.set_waiting("ErrImagePull", message)
        self.event("Warning", "Failed", message)
        self.event("Warning", "Failed", "Error: ErrImagePull")
        self.publish()
        await trio.sleep(BACKOFF_START)
        record.set_waiting("ImagePullBackOff", f'Back-off pulling image "{image}"')
        self.event("Normal", "BackOff", f'Back-off pulling image "{image}"')
        self.event("Warning", "Failed", "Error: ImagePullBackOff")
        self.publish()
        await trio.sleep_forever()

    # -- mounts ------------------------------------------------------------------------------------

    async def holder_for(self, name: str) -> Holder:
        """The mount namespace of container ``name`` (created on first use, also for exec)."""
        return await self._holder(self.containers[name])

    async def _holder(self, c: JsonObject) -> Holder:
        self._touched_disk = True
        async with self._holder_lock:
            name = c["name"]
            if name in self.holders:
                return self.holders[name]
            if self._volumes is None:
                self._volumes = prepare_volumes(self.state, self.current_pod(), self.sandbox, self._sim_root())
            mounts = []
            for vm in c.get("volumeMounts") or []:
                source = self._volumes.get(vm["name"])
                if source is None:
                    raise VolumeError(f"volumeMount {vm['name']!r} of container {name!r} names no volume of the pod")
                if vm.get("subPath"):
                    source = source / vm["subPath"]
                    if not source.exists():
                        source.mkdir(parents=True)
                mounts.append(Mount(source, vm["mountPath"], bool(vm.get("readOnly"))))
            message_file = self._termination_log(name)
            message_file.parent.mkdir(parents=True, exist_ok=True)
            message_file.touch()
            mounts.append(Mount(message_file, c.get("terminationMessagePath") or "/dev/termination-log"))
            read_only = bool((c.get("securityContext") or {}).get("readOnlyRootFilesystem"))
            working_dir = c.get("workingDir") or "/"
            holder = await Holder.start(self.sandbox / "containers" / name, mounts, working_dir, read_only)
            self.holders[name] = holder
            return holder

    async def _release_holders(self) -> None:
        async with self._holder_lock:
            holders, self.holders = list(self.holders.values()), {}
        for holder in holders:
            await holder.stop()

    # -- stopping ----------------------------------------------------------------------------------

    async def _stop(self, names: list[str], deadline: float) -> None:
        runs = [self.runs[n] for n in names if n in self.runs]
        for n in names:
            if n in self.runs:
                self.event("Normal", "Killing", f"Stopping container {n}")
        for run in runs:
            run.send_signal(signal.SIGTERM)
        with trio.move_on_at(deadline):
            for run in runs:
                await run.ended.wait()
        for run in runs:
            if not run.ended.is_set():
                run.send_signal(signal.SIGKILL)
        for run in runs:
            await run.ended.wait()

    async def _terminate_all(self, grace: int) -> None:
        """Main (and running init) containers first, then sidecars in reverse order, in one grace budget."""
        deadline = trio.current_time() + grace
        others = [n for n, r in self.records.items() if r.kind != "sidecar"]
        await self._stop(others, deadline)
        for name in reversed([n for n, r in self.records.items() if r.kind == "sidecar"]):
            await self._stop([name], deadline)

    async def _stop_sidecars(self, grace: int) -> None:
        deadline = trio.current_time() + grace
        self.stopping = True
        for name in reversed([n for n, r in self.records.items() if r.kind == "sidecar"]):
            await self._stop([name], deadline)

    async def _teardown(self) -> None:
        for run in list(self.runs.values()):
            run.send_signal(signal.SIGKILL)
        for logs in self.logs.values():
            logs.close()
        await self._release_holders()
        self.finished.set()
        if self._touched_disk:
            shutil.rmtree(self.sandbox, ignore_errors=True)

    # -- status and events -------------------------------------------------------------------------

    def event(self, type_: str, reason: str, message: str) -> None:
        if self.deleting and self.removed:
            return
        self.state.record_event(self.pod, type_, reason, message, "kubelet")

    def publish(self) -> None:
        """Write the pod's status to the store (not while it is being deleted: that write would remove it)."""
        changed, self._changed = self._changed, trio.Event()
        changed.set()
        if self.deleting:
            return
        current = self.state.store.get(self.pods, self.namespace, self.name)
        if current is None or current["metadata"].get("uid") != self.uid:
            return
        if current["metadata"].get("deletionTimestamp"):
            return
        updated = dict(current)
        updated["metadata"] = copy.deepcopy(current["metadata"])
        updated["status"] = self.view.render(list(self.records.values()), self.scheduled_at)
        self.state.store.update(self.pods, updated, check_version=False)
