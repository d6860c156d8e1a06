"""Files in and out of the pod: tar streams over exec, with the safety checks of both directions.

Each transfer step is retried here, whole (``FleetSettings.retry``: a fresh tar stream, the command run
again), and only here: ``exec_stream`` makes one attempt, so a dropped exec is tried at most
``retry.attempts`` times in all.

In: fleet builds the tar itself, member by member, while it streams (``tar_stream``); the pod's
``tar -x`` unpacks it into the working directory; fleet then checks that every file arrived with its size
and writes the ready marker. Out: fleet lists the working directory, asks for a tar of what it needs, spools
it to a temporary file (never in memory) and unpacks only regular files whose names stay inside the
working directory: absolute names, ``..``, symlinks, hard links and devices are refused.
"""

from __future__ import annotations

import logging
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from fleet.artifacts import ArtifactRef, ArtifactStore, artifact_key, key_from_uri
from fleet.errors import ClusterError, StepFailed
from fleet.kube.client import KubeClient
from fleet.kube.execws import exec_stream
from fleet.kube.retry import retrying
from fleet.pods.models import PodTask, unsafe_relative_path
from fleet.pods.spec import ENDED_MARKER, OUTPUT_DIR, READY_MARKER, WORKING_DIR

log = logging.getLogger(__name__)

BLOCK = 512
#: Above this much command line, ask for the whole working directory instead of a list of names.
MAX_NAMES_CHARS = 6000
OUTPUT_PREFIX = OUTPUT_DIR.removeprefix(WORKING_DIR + "/") + "/"


@dataclass(frozen=True)
class TarSource:
    """One file to upload: its name below the working directory, size, and a way to read it."""

    name: str
    size: int
    chunks: Callable[[], AsyncIterator[bytes]]


@dataclass
class Downloaded:
    """What came out of the pod: stored files by name, and members refused with the reason."""

    files: dict[str, ArtifactRef] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


# -- in --------------------------------------------------------------------------------------------


async def input_sources(task: PodTask, store: ArtifactStore) -> list[TarSource]:
    """The rendered input files of ``task`` as tar sources (contents inline, artifacts from the store)."""
    sources: list[TarSource] = []
    for name, item in task.input_files.items():
        if item.content is not None:
            sources.append(_bytes_source(name, item.content.encode()))
        else:
            key = key_from_uri(item.artifact or "")
            ref = await store.stat(key)
            sources.append(TarSource(name=name, size=ref.size, chunks=_stored_chunks(store, key)))
    return sources


def _stored_chunks(store: ArtifactStore, key: str) -> Callable[[], AsyncIterator[bytes]]:
    return lambda: store.read_chunks(key)


def _bytes_source(name: str, data: bytes) -> TarSource:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return TarSource(name=name, size=len(data), chunks=chunks)


async def tar_stream(sources: Iterable[TarSource]) -> AsyncIterator[bytes]:
    """A tar (PAX: any name length, UTF-8 names) produced as it is sent."""
    now = time.time()
    for source in sources:
        info = tarfile.TarInfo(source.name)
        info.size = source.size
        info.mode = 0o666
        info.mtime = now
        yield info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
        sent = 0
        async for chunk in source.chunks():
            sent += len(chunk)
            if sent > source.size:
                raise ClusterError(f"input file {source.name} grew while it was being sent")
            yield chunk
        if sent != source.size:
            raise ClusterError(f"input file {source.name}: {sent} bytes read, {source.size} expected")
        if source.size % BLOCK:
            yield bytes(BLOCK - source.size % BLOCK)
    yield bytes(2 * BLOCK)


async def upload(client: KubeClient, namespace: str, pod: str, container: str, sources: list[TarSource]) -> None:
    """Stream ``sources`` into the working directory, verify names and sizes, then open the gate."""
    operation = f"upload to pod {namespace}/{pod}"
    async for attempt in retrying(client.settings.retry, cluster=client.name, operation=operation):
        with attempt:
            outcome = await exec_stream(
                client,
                namespace,
                pod,
                # The gate loop may not have created the directory yet when the init container just started.
                ["sh", "-c", f"mkdir -p {WORKING_DIR} && exec tar -xf - -C {WORKING_DIR}"],
                container=container,
                stdin=tar_stream(sources),
            )
            _check(outcome.exit_code, outcome.stderr, "unpacking the input files")
            await _verify(client, namespace, pod, container, sources)
    await run_checked(client, namespace, pod, container, f": > {READY_MARKER}", "releasing the input gate")


async def _verify(client: KubeClient, namespace: str, pod: str, container: str, sources: list[TarSource]) -> None:
    script = (
        f'cd {WORKING_DIR} && while IFS= read -r f; do if [ -f "$f" ]; then wc -c < "$f"; else echo missing; fi; done'
    )
    output = bytearray()

    async def names() -> AsyncIterator[bytes]:
        yield "".join(f"{s.name}\n" for s in sources).encode()

    outcome = await exec_stream(
        client, namespace, pod, ["sh", "-c", script], container=container, stdin=names(), on_stdout=_appender(output)
    )
    _check(outcome.exit_code, outcome.stderr, "checking the input files")
    found = output.decode().split()
    problems = [
        f"{s.name}: {'missing' if got == 'missing' else f'{got} bytes'} (expected {s.size})"
        for s, got in zip(sources, found, strict=False)
        if got != str(s.size)
    ]
    if len(found) != len(sources):
        problems.append(f"{len(found)} of {len(sources)} files checked")
    if problems:
        raise ClusterError("input files did not arrive intact: " + "; ".join(problems))


# -- out -------------------------------------------------------------------------------------------


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob relative to the working directory: ``*`` and ``?`` stay within one path part, ``**`` spans parts."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1 : end].replace("!", "^", 1) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def output_selector(task: PodTask) -> Callable[[str], str | None]:
    """Maps a path below the working directory to its output name, or None when it is not collected.

    Files in the output directory are named relative to it; others relative to the working directory.
    """
    patterns = [glob_regex(p.removeprefix("./")) for p in task.output_files]

    def select(path: str) -> str | None:
        if path.startswith(OUTPUT_PREFIX):
            return path.removeprefix(OUTPUT_PREFIX)
        if task.sync_working_directory or any(p.match(path) for p in patterns):
            return path
        return None

    return select


async def download(
    client: KubeClient,
    namespace: str,
    pod: str,
    container: str,
    task: PodTask,
    store: ArtifactStore,
    key_prefix: tuple[str, ...],
) -> Downloaded:
    """Collect the output files into ``store`` under ``key_prefix`` + output name."""
    select = output_selector(task)
    listing = await _output_of(
        client, namespace, pod, container, f"cd {WORKING_DIR} && find . ! -type d", "listing the working directory"
    )
    wanted = [p for p in (_clean(line) for line in listing.decode("utf-8", "replace").splitlines()) if select(p)]
    result = Downloaded()
    if not wanted:
        return result
    names = [f"./{p}" for p in wanted]
    paths = names if sum(len(n) + 1 for n in names) <= MAX_NAMES_CHARS else ["."]
    with tempfile.TemporaryDirectory(prefix="fleet-download-") as tmp:
        spool = Path(tmp) / "out.tar"
        staging = Path(tmp) / "files"
        cap = client.settings.pod_output_max_bytes
        await _receive_tar(client, namespace, pod, container, paths, spool, cap)
        extracted, result.refused = await trio.to_thread.run_sync(extract_safely, spool, staging, select, cap)
        for name, path in extracted.items():
            result.files[name] = await store.put_file(artifact_key(*key_prefix, name), path)
    for name, reason in result.refused.items():
        log.warning("refused output file %r: %s", name, reason, extra={"cluster": client.name, "pod": pod})
    return result


def too_large(max_bytes: int) -> StepFailed:
    return StepFailed(
        f"the output files exceed {max_bytes:,} bytes (FLEET_POD_OUTPUT_MAX_BYTES); nothing more is stored"
    )


async def _receive_tar(
    client: KubeClient, namespace: str, pod: str, container: str, paths: list[str], spool: Path, max_bytes: int
) -> None:
    operation = f"download from pod {namespace}/{pod}"
    # The tar's headers and padding on top of the files' own bytes, generously.
    limit = max_bytes + 64 * BLOCK * (1 + len(paths))
    async for attempt in retrying(client.settings.retry, cluster=client.name, operation=operation):
        with attempt:
            async with await trio.open_file(spool, "wb") as sink:
                received = 0

                async def write(data: bytes) -> None:
                    nonlocal received
                    received += len(data)
                    if received > limit:
                        raise too_large(max_bytes)
                    await sink.write(data)

                outcome = await exec_stream(
                    client,
                    namespace,
                    pod,
                    ["tar", "-cf", "-", "-C", WORKING_DIR, *paths],
                    container=container,
                    on_stdout=write,
                )
            _check(outcome.exit_code, outcome.stderr, "packing the output files")


def extract_safely(
    archive: Path, target: Path, select: Callable[[str], str | None], max_bytes: int | None = None
) -> tuple[dict[str, Path], dict[str, str]]:
    """Unpack the selected regular files of ``archive`` below ``target``; refuse every unsafe member.
    Files are written under generated names (never the member's), so no name or link can lead outside
    ``target``; more than ``max_bytes`` in all is a ``StepFailed``.

    Returns (output name → extracted path, member name → why it was refused).
    """
    total = 0
    extracted: dict[str, Path] = {}
    refused: dict[str, str] = {}
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:", encoding="utf-8", errors="surrogateescape") as tar:
        for member in tar:
            if member.isdir():
                continue
            name = _clean(member.name)
            problem = unsafe_relative_path(name) if not member.name.startswith("/") else "is absolute"
            if problem is None and not member.isfile():
                problem = "is a link or a special file, not a regular file"
            if problem is None:
                output = select(name)
                if output is None:
                    continue
                total += member.size
                if max_bytes is not None and total > max_bytes:
                    raise too_large(max_bytes)
                source = tar.extractfile(member)
                if source is None:
                    refused[member.name] = "cannot be read"
                    continue
                path = target / str(len(extracted))
                with source, path.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1024 * 1024)
                extracted[output] = path
            else:
                refused[member.name] = problem
    return extracted, refused


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


# -- markers and small commands ---------------------------------------------------------------------


async def run_checked(client: KubeClient, namespace: str, pod: str, container: str, script: str, what: str) -> None:
    """Run a small shell script in the container; a non-zero exit raises ``ClusterError``."""
    operation = f"{what} in pod {namespace}/{pod}"
    async for attempt in retrying(client.settings.retry, cluster=client.name, operation=operation):
        with attempt:
            outcome = await exec_stream(client, namespace, pod, ["sh", "-c", script], container=container)
            _check(outcome.exit_code, outcome.stderr, what)


async def _output_of(client: KubeClient, namespace: str, pod: str, container: str, script: str, what: str) -> bytes:
    """The stdout of a small shell script run in the container (retried like every transfer step)."""
    operation = f"{what} in pod {namespace}/{pod}"
    async for attempt in retrying(client.settings.retry, cluster=client.name, operation=operation):
        with attempt:
            output = bytearray()
            collect = _appender(output)
            outcome = await exec_stream(
                client, namespace, pod, ["sh", "-c", script], container=container, on_stdout=collect
            )
            _check(outcome.exit_code, outcome.stderr, what)
    return bytes(output)


def _appender(buffer: bytearray) -> Callable[[bytes], Awaitable[None]]:
    async def append(data: bytes) -> None:
        buffer.extend(data)

    return append


async def release_sidecar(client: KubeClient, namespace: str, pod: str, container: str) -> None:
    await run_checked(client, namespace, pod, container, f": > {ENDED_MARKER}", "releasing the file sidecar")


def _check(exit_code: int, stderr: bytes, what: str) -> None:
    if exit_code != 0:
        text = stderr.decode("utf-8", "replace").strip()
        raise StepFailed(f"{what} failed with exit code {exit_code}" + (f": {text}" if text else ""))
