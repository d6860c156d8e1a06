"""Containers as host processes, each inside its own mount namespace.

Every real container gets a *holder* (``holder_main.py``): a process in a new mount namespace that
mounts an overlay of the host root (upper and work directories in the container's sandbox),
``/proc``, ``/sys``, a private ``/dev`` (device nodes, the host's devpts, its own shm), each volume
(and the termination message file) at its mountPath, creates the working directory, chroots, sleeps.
The container's process and every exec are started with ``nsenter -t <holder> -m -r -w``: they see
the holder's mounts, root and working directory. Mounts live only in the holder's namespace, so the
host's own paths stay untouched, and they vanish with the holder.

Where the OS refuses any step (no privilege, no overlayfs), ``RuntimeRefused`` carries its message and
the container fails with it; nothing ever runs with the wrong paths.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from fleet.sim.errors import SimError
from fleet.sim.kubelet.cgroups import MemoryCgroup
from fleet.sim.kubelet.logs import ContainerLog

_HOLDER = Path(__file__).with_name("holder_main.py")
_SETUP_DEADLINE = 20.0
_KILL_DEADLINE = 5.0


class RuntimeRefused(SimError):
    """The OS refused to set up a container's mounts (the message says which step and why)."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeRefused(f"{name} is not installed on this machine; fleet.sim needs util-linux to run pods")
    return path


@dataclass(frozen=True)
class Mount:
    """A host path bind-mounted into a container."""

    source: Path
    target: str
    read_only: bool = False


def kill_group(pid: int, sig: int) -> None:
    """Signal a container's whole process group (it runs in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def close_process(process: trio.Process) -> None:
    """Close our ends of the process's pipes and reap it (callers kill it first)."""
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            await stream.aclose()
    await process.wait()


async def _read_all(stream: trio.abc.ReceiveStream | None) -> bytes:
    if stream is None:
        return b""
    chunks = []
    while chunk := await stream.receive_some():
        chunks.append(chunk)
    return b"".join(chunks)


class Holder:
    """The process that owns one container's mount namespace."""

    def __init__(self, process: trio.Process) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    async def start(cls, sandbox: Path, mounts: Sequence[Mount], working_dir: str, read_only_root: bool) -> Holder:
        """Set up the namespace; ``RuntimeRefused`` with the OS's message if any step fails."""
        for sub in ("upper", "work", "root"):
            (sandbox / sub).mkdir(parents=True, exist_ok=True)
        spec = {
            "upper": str(sandbox / "upper"),
            "work": str(sandbox / "work"),
            "root": str(sandbox / "root"),
            "working_dir": working_dir or "/",
            "read_only_root": read_only_root,
            "mounts": [[str(m.source), m.target, m.read_only] for m in mounts],
        }
        # -S -I: no site packages, no environment, no current directory: a fast, isolated start.
        command = [sys.executable, "-S", "-I", str(_HOLDER), json.dumps(spec)]
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            with trio.fail_after(_SETUP_DEADLINE):
                assert process.stdout is not None
                line = b""
                while not line.endswith(b"\n"):
                    chunk = await process.stdout.receive_some(64)
                    if not chunk:
                        break
                    line += chunk
                if line != b"ready\n":
                    errors = await _read_all(process.stderr)
                    await process.wait()
                    message = errors.decode(errors="replace").strip() or f"exit code {process.returncode}"
                    raise RuntimeRefused(f"cannot set up the container's mount namespace: {message}")
        except BaseException:
            with trio.CancelScope(shield=True):
                kill_group(process.pid, signal.SIGKILL)
                await close_process(process)
            raise
        return cls(process)

    async def stop(self) -> None:
        kill_group(self._process.pid, signal.SIGKILL)
        with trio.CancelScope(shield=True), trio.move_on_after(_KILL_DEADLINE):
            await close_process(self._process)

    def enter_command(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside this namespace, root and working directory."""
        return [_tool("nsenter"), "-t", str(self.pid), "-m", "-r", "-w", "--", *argv]


class ContainerRun(abc.ABC):
    """One run of a container: a process, or a virtual container that only waits to be stopped."""

    def __init__(self) -> None:
        self.ended = trio.Event()
        self.oom_killed = False

    @abc.abstractmethod
    def send_signal(self, sig: int) -> None:
        """Deliver ``sig`` to the container (SIGTERM asks it to stop, SIGKILL ends it)."""

    @abc.abstractmethod
    async def wait(self) -> int:
        """Run to the end and return the exit code (128 + signal when killed)."""


class VirtualRun(ContainerRun):
    """A container with no command: it runs until stopped, then exits 0 (SIGTERM) or 137 (SIGKILL)."""

    def __init__(self) -> None:
        super().__init__()
        self._code: int | None = None
        self._stopped = trio.Event()

    def send_signal(self, sig: int) -> None:
        if self._code is None:
            self._code = 0 if sig == signal.SIGTERM else 128 + sig
            self._stopped.set()

    async def wait(self) -> int:
        try:
            await self._stopped.wait()
            return self._code if self._code is not None else 0
        finally:
            self.ended.set()


class ProcessRun(ContainerRun):
    """A container process; stdout and stderr go, merged, into the run's log."""

    def __init__(self, process: trio.Process, log: ContainerLog, cgroup: MemoryCgroup | None) -> None:
        super().__init__()
        self._process = process
        self._log = log
        self._cgroup = cgroup

    @classmethod
    async def start(
        cls,
        holder: Holder,
        argv: Sequence[str],
        env: Mapping[str, str],
        log: ContainerLog,
        cgroup: MemoryCgroup | None = None,
    ) -> ProcessRun:
        command = holder.enter_command(argv)
        if cgroup is not None:
            command = cgroup.wrap(command)
        process = await trio.lowlevel.open_process(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
        return cls(process, log, cgroup)

    def send_signal(self, sig: int) -> None:
        """SIGTERM goes to the container's main process only (as to PID 1); SIGKILL to all of it."""
        if self._process.returncode is None:
            if sig == signal.SIGKILL:
                kill_group(self._process.pid, sig)
            else:
                self._process.send_signal(sig)

    async def _pump(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        while chunk := await stream.receive_some(65536):
            self._log.write(bytes(chunk))

    async def wait(self) -> int:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump)
                code = await self._process.wait()
                # Like a container's PID 1 exiting: whatever it left behind goes too (and frees the pipe).
                kill_group(self._process.pid, signal.SIGKILL)
            return 128 - code if code < 0 else code
        finally:
            with trio.CancelScope(shield=True):
                kill_group(self._process.pid, signal.SIGKILL)
                with trio.move_on_after(_KILL_DEADLINE):
                    await close_process(self._process)
            self._log.close()
            if self._cgroup is not None:
                self.oom_killed = self._cgroup.oom_killed()
                self._cgroup.remove()
            self.ended.set()
