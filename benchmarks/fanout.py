"""``fleet run`` across a simulated fleet against a minimal raw script doing the same requests.

On every cluster: apply a 3-object manifest (ConfigMap, Deployment, Service), wait until it is ready,
get the Deployment (``benchmarks/playbooks/fanout.yaml``), at most ``--concurrency`` clusters at once.
The baselines, in the same invocation, are what a user of trio and the official client writes: a
``CapacityLimiter`` of the same size, and per cluster, in a worker thread, a client of its own,
server-side apply of the three objects, a watch until the Deployment is ready, a read of it.

- ``raw, same requests`` (the goal's baseline: "the same requests" as fleet's) also reads
  ``/version`` (the schemas fleet validates the manifest against) and each object before applying it
  (what created/changed/unchanged and rollback snapshots come from): 9 requests per cluster, as fleet;
- ``raw, minimal`` leaves those out: 5 requests per cluster. Its ratio is printed as well: what
  fleet's validation and its before-images cost on top of its own overhead.

The sim (``fleet sim up``) runs in a process of its own and every measured side is a fresh process, so
the figures are that process's alone: wall time, CPU seconds (user + system, from ``wait4``) and peak
resident memory (``ru_maxrss``). Each run uses objects of its own name, so every run creates them.

- ``fleet run``: ``python -m fleet run benchmarks/playbooks/fanout.yaml -i INVENTORY -c N --quiet``
  with the journal on (as users run it);
- journal on / off: the same run through the engine (``run_playbook``) in a process of this script,
  once with the journal and once without (``RunOptions.journal=None``); their difference is what the
  journal costs.

Goals: fleet run / raw, same requests: wall <= 1.2; fleet's peak RSS <= 150 MB. The sim keeps what each
run creates, so a later run meets a bigger store: the sides' order turns by one every round, and
``--rounds 5`` puts each side once in each place (the figures are medians over the rounds).

    .venv/bin/python benchmarks/fanout.py [--clusters 1000] [--concurrency 100] [--rounds 1] [--tls/--no-tls]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simproc import sim_up

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / "benchmarks" / "playbooks" / "fanout.yaml"
GOAL_RATIO = 1.2
GOAL_MB = 150.0
WAIT_SECONDS = 300


@dataclass(frozen=True)
class Measured:
    label: str
    wall: float
    cpu: float
    rss_mb: float
    sim_cpu: float


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(label: str, command: list[str], env: dict[str, str], sim_pid: int) -> Measured:
    """Run ``command`` to its end; its wall time, CPU seconds and peak RSS (the process's own), and the
    CPU seconds the sim spent meanwhile."""
    sim_before = _cpu_seconds(sim_pid)
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{label} exited {proc.returncode}:\n{output.decode(errors='replace')[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(label, wall, cpu, usage.ru_maxrss / 1024, _cpu_seconds(sim_pid) - sim_before)


# -- the raw baseline (a process of its own) -----------------------------------------------------------


def raw_cluster(kubeconfig: Path, context: str, name: str, same_requests: bool) -> None:
    """One cluster, as a user of the official client writes it (synchronous: run in a worker thread).
    ``same_requests``: also read ``/version`` and each object before it is applied, as fleet does."""
    import kubernetes

    docs = _manifest(name)
    api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig), context=context)
    try:
        core = kubernetes.client.CoreV1Api(api)
        apps = kubernetes.client.AppsV1Api(api)
        ssa = {"field_manager": "raw", "_content_type": "application/apply-patch+yaml"}
        cm, deploy, svc = docs

        def before(read: Callable[[str, str], object]) -> None:
            if not same_requests:
                return
            try:
                read(name, "default")
            except kubernetes.client.ApiException as e:
                if e.status != 404:
                    raise

        if same_requests:
            kubernetes.client.VersionApi(api).get_code()
        before(core.read_namespaced_config_map)
        core.patch_namespaced_config_map(name, "default", cm, **ssa)
        before(apps.read_namespaced_deployment)
        generation = apps.patch_namespaced_deployment(name, "default", deploy, **ssa).metadata.generation
        before(core.read_namespaced_service)
        core.patch_namespaced_service(name, "default", svc, **ssa)
        watch = kubernetes.watch.Watch()
        stream = watch.stream(
            apps.list_namespaced_deployment,
            "default",
            field_selector=f"metadata.name={name}",
            timeout_seconds=WAIT_SECONDS,
        )
        for event in stream:
            d = event["object"]
            s = d.status
            want = d.spec.replicas
            if (
                s is not None
                and (s.observed_generation or 0) >= generation
                and (s.updated_replicas or 0) == want
                and (s.available_replicas or 0) == want
                and (s.ready_replicas or 0) == want
                and (s.replicas or 0) == want
            ):
                watch.stop()
                break
        else:
            raise RuntimeError(f"{context}: the Deployment never became ready")
        apps.read_namespaced_deployment(name, "default")
    finally:
        api.close()


def _manifest(name: str) -> list[dict[str, object]]:
    """The playbook's manifest with its one input set (the same bytes fleet applies)."""
    import jinja2
    import yaml

    text = (PLAYBOOK.parent / "manifest.yaml.j2").read_text()
    return list(yaml.safe_load_all(jinja2.Template(text).render(inputs={"name": name})))


def raw_main(sim_dir: Path, clusters: int, concurrency: int, name: str, same_requests: bool) -> None:
    import trio

    limiter = trio.CapacityLimiter(concurrency)
    failures: list[str] = []

    async def one(index: int) -> None:
        kubeconfig = sim_dir / "kubeconfigs" / f"sim-{index}.yaml"
        try:
            await trio.to_thread.run_sync(raw_cluster, kubeconfig, f"sim-{index}", name, same_requests, limiter=limiter)
        except Exception as e:
            failures.append(f"sim-{index}: {e}")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for index in range(clusters):
                nursery.start_soon(one, index)

    trio.run(main)
    if failures:
        sys.exit(f"{len(failures)} cluster(s) failed, e.g. {failures[0]}")


# -- the engine with the journal on or off (a process of its own) ----------------------------------------


def engine_main(inventory: Path, concurrency: int, name: str, journal: Path | None, artifacts: Path) -> None:
    """What ``fleet run`` does (the CLI's own preparation), then ``run_playbook`` without the view."""
    import trio

    from fleet.artifacts import LocalArtifactStore
    from fleet.cli.fanout import Clusters
    from fleet.cli.playbooks import _prepare
    from fleet.engine.run import RunOptions, new_run_id, run_playbook

    clusters = Clusters([inventory], None, [], None, False, None, [], concurrency)
    loaded, inputs, _, targets, resolver = _prepare(PLAYBOOK, [f"name={name}"], None, clusters)
    options = RunOptions(
        run_id=new_run_id(loaded.playbook.id),
        artifacts=LocalArtifactStore(artifacts),
        journal=journal,
        concurrency=concurrency,
    )
    report = trio.run(lambda: run_playbook(loaded, targets, inputs, resolver=resolver, options=options))
    if report.status != "succeeded":
        failed = [f"{c.name}: {c.error}" for c in report.clusters if c.outcome != "succeeded"]
        sys.exit(f"run {report.status}: {len(failed)} cluster(s) did not succeed, e.g. {failed[:1]}")


# -- the invocation --------------------------------------------------------------------------------------


def _round(sim_dir: Path, sim_pid: int, home: Path, args: argparse.Namespace, index: int) -> list[Measured]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        "FLEET_JOURNAL": str(home / "journal.sqlite"),
        "FLEET_ARTIFACTS": str(home / "artifacts"),
    }
    inventory = sim_dir / "inventory.yaml"
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--sim-dir", str(sim_dir), "--clusters", str(args.clusters), "--concurrency", str(args.concurrency)]
    fleet_run = [sys.executable, "-m", "fleet", "run", str(PLAYBOOK), "-i", str(inventory)]
    fleet_run += ["-c", str(args.concurrency), "--quiet", "--set", f"name=fleet-{index}"]
    runs = [
        ("raw, minimal", [*me, "--role", "raw", *common, "--name", f"raw-{index}"]),
        ("raw, same requests", [*me, "--role", "raw-same", *common, "--name", f"same-{index}"]),
        ("fleet run", fleet_run),
        ("engine, journal on", [*me, "--role", "engine-journal", *common, "--name", f"on-{index}"]),
        ("engine, journal off", [*me, "--role", "engine", *common, "--name", f"off-{index}"]),
    ]
    # The sim keeps every side's objects, so each run finds a bigger store than the one before it: the
    # order turns by one each round (``--rounds 5`` puts every side once in every place).
    shift = index % len(runs)
    out = []
    for label, command in runs[shift:] + runs[:shift]:
        m = measure(label, command, env, sim_pid)
        figures = f"{m.wall:7.2f} s wall  {m.cpu:7.2f} s CPU  {m.rss_mb:6.0f} MB  (sim: {m.sim_cpu:.2f} s CPU)"
        print(f"  round {index + 1}: {label:<21} {figures}", flush=True)
        out.append(m)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True)
    # Internal: the measured processes this script starts.
    parser.add_argument("--role", choices=["raw", "raw-same", "engine", "engine-journal"], help=argparse.SUPPRESS)
    parser.add_argument("--sim-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role in ("raw", "raw-same"):
        raw_main(args.sim_dir, args.clusters, args.concurrency, args.name, args.role == "raw-same")
        return
    if args.role is not None:
        journal = Path(os.environ["FLEET_JOURNAL"]) if args.role == "engine-journal" else None
        artifacts = Path(os.environ["FLEET_ARTIFACTS"])
        engine_main(args.sim_dir / "inventory.yaml", args.concurrency, args.name, journal, artifacts)
        return

    # fleet's bytecode, as an installation has it: with PYTHONDONTWRITEBYTECODE set, every measured process
    # would compile fleet's modules again (0.15 s each); the raw side's libraries have theirs.
    compileall.compile_dir(ROOT / "fleet", quiet=1)
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        sim_dir = Path(tmp) / "sim"
        started = time.perf_counter()
        with sim_up(args.clusters, sim_dir, tls=args.tls) as (sim, _):
            print(f"sim: {args.clusters} clusters up in {time.perf_counter() - started:.1f} s (its own process)")
            print(f"{os.cpu_count()} CPUs; concurrency {args.concurrency}; {args.rounds} round(s)", flush=True)
            rounds = [_round(sim_dir, sim.pid, Path(tmp), args, i) for i in range(args.rounds)]
    report(rounds, args.clusters)


def report(rounds: list[list[Measured]], clusters: int) -> None:
    by_label: dict[str, list[Measured]] = {}
    for measured in rounds:
        for m in measured:
            by_label.setdefault(m.label, []).append(m)

    def med(label: str, field: str) -> float:
        return statistics.median(getattr(m, field) for m in by_label[label])

    print(f"\nmedians over {len(rounds)} round(s), {clusters} clusters:")
    print(f"{'':<22}{'wall s':>10}{'CPU s':>10}{'CPU ms/cluster':>16}{'peak RSS MB':>13}{'sim CPU s':>11}")
    for label in by_label:
        wall, cpu, rss, sim = (med(label, f) for f in ("wall", "cpu", "rss_mb", "sim_cpu"))
        print(f"{label:<22}{wall:>10.2f}{cpu:>10.2f}{cpu / clusters * 1000:>16.1f}{rss:>13.0f}{sim:>11.2f}")
    ratio = med("fleet run", "wall") / med("raw, same requests", "wall")
    minimal = med("fleet run", "wall") / med("raw, minimal", "wall")
    rss = med("fleet run", "rss_mb")
    on, off = med("engine, journal on", "wall"), med("engine, journal off", "wall")
    cpu_on, cpu_off = med("engine, journal on", "cpu"), med("engine, journal off", "cpu")
    print(f"wall fleet run / raw, same requests: {ratio:.2f} (goal <= {GOAL_RATIO})")
    print(f"wall fleet run / raw, minimal (5 requests, not 9): {minimal:.2f}")
    print(f"fleet run CPU per cluster: {med('fleet run', 'cpu') / clusters * 1000:.1f} ms")
    print(f"fleet run peak RSS: {rss:.0f} MB (goal <= {GOAL_MB:.0f})")
    print(
        f"journal overhead: wall {on - off:+.2f} s ({(on / off - 1) * 100:+.0f}%), "
        f"CPU {cpu_on - cpu_off:+.2f} s ({(cpu_on - cpu_off) / clusters * 1000:+.1f} ms per cluster)"
    )
    if ratio > GOAL_RATIO or rss > GOAL_MB:
        sys.exit(1)


if __name__ == "__main__":
    main()
