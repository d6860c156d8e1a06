"""Containers with a command run as real processes inside the pod's mounts."""

import base64
from pathlib import Path

import pytest
import trio

from fleet.sim.kubelet import cgroups, kubelet_for
from fleet.sim.kubelet.logs import LogQuery
from fleet.sim.kubelet.runtime import Holder, Mount, RuntimeRefused
from tests.sim.kubelet_harness import (
    child_processes,
    container_status,
    create_pod,
    delete_pod,
    events,
    get_pod,
    new_children,
    phase,
    pod,
    read_log,
    running_cluster,
    wait_for,
    wait_pod,
    waiting_reason,
)

WORK = {"name": "work", "emptyDir": {"medium": "Memory"}}
MOUNT = [{"name": "work", "mountPath": "/fleet"}]


def _sh(name, script, **extra):
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


def _on_host(path):
    return Path(path).exists()


def _done(p):
    return phase(p) in ("Succeeded", "Failed")


async def test_init_container_writes_a_file_the_main_container_reads():
    async with running_cluster() as state:
        spec = pod(
            "files",
            _sh("main", "cat /fleet/working-dir/in.txt; pwd", volumeMounts=MOUNT, workingDir="/fleet/working-dir"),
            initContainers=[
                _sh("init", "mkdir -p /fleet/working-dir && echo hello > /fleet/working-dir/in.txt", volumeMounts=MOUNT)
            ],
            volumes=[WORK],
            restartPolicy="Never",
        )
        create_pod(state, spec)
        p = await wait_pod(state, "files", _done)
        assert phase(p) == "Succeeded", p["status"]
        assert await read_log(state, "files", "main") == "hello\n/fleet/working-dir\n"
        main = container_status(p, "main")["state"]["terminated"]
        assert (main["exitCode"], main["reason"]) == (0, "Completed")
        assert main["startedAt"]
        assert main["finishedAt"]
        assert not _on_host("/fleet/working-dir")
        assert not _on_host("/fleet")


async def test_exit_code_lands_in_the_container_status_and_fails_the_pod():
    async with running_cluster() as state:
        create_pod(state, pod("exits", _sh("main", "echo bye; exit 3"), restartPolicy="Never"))
        p = await wait_pod(state, "exits", _done)
        assert phase(p) == "Failed"
        terminated = container_status(p, "main")["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
        ready = {c["type"]: c for c in p["status"]["conditions"]}["Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")


async def test_env_sources_and_working_dir():
    async with running_cluster() as state:
        state.store.create(
            state.rt("", "ConfigMap"),
            {"metadata": {"name": "cm", "namespace": "default"}, "data": {"color": "blue", "size": "L"}},
        )
        secret = {
            "metadata": {"name": "sec", "namespace": "default"},
            "data": {"token": base64.b64encode(b"s3cr3t").decode()},
        }
        state.store.create(state.rt("", "Secret"), secret)
        env = [
            {"name": "PLAIN", "value": "v"},
            {"name": "EXPANDED", "value": "$(PLAIN)-x"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "color"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
            {"name": "NONE", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        ]
        names = "PLAIN EXPANDED POD NS UID TEAM IP NODE MEM COLOR TOKEN CM_size NONE"
        script = f"pwd; for v in {names}; do eval echo $v=\\${{$v-unset}}; done"
        main = _sh(
            "main", script, env=env, envFrom=[{"configMapRef": {"name": "cm"}, "prefix": "CM_"}], workingDir="/srv/app"
        )
        main["resources"] = {"limits": {"memory": "64Mi"}}
        spec = pod("envs", main, restartPolicy="Never")
        spec["metadata"]["labels"] = {"team": "blue"}
        created = create_pod(state, spec)
        p = await wait_pod(state, "envs", _done)
        assert phase(p) == "Succeeded", p["status"]
        lines = (await read_log(state, "envs", "main")).splitlines()
        assert lines[0] == "/srv/app"
        values = dict(line.split("=", 1) for line in lines[1:])
        assert values == {
            "PLAIN": "v",
            "EXPANDED": "v-x",
            "POD": "envs",
            "NS": "default",
            "UID": created["metadata"]["uid"],
            "TEAM": "blue",
            "IP": p["status"]["podIP"],
            "NODE": p["spec"]["nodeName"],
            "MEM": "64",
            "COLOR": "blue",
            "TOKEN": "s3cr3t",
            "CM_size": "L",
            "NONE": "unset",
        }


async def test_missing_secret_holds_the_container_until_it_exists():
    async with running_cluster() as state:
        env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "later", "key": "t"}}}]
        create_pod(state, pod("waits", _sh("main", "echo $T", env=env), restartPolicy="Never"))
        p = await wait_pod(state, "waits", lambda p: waiting_reason(p, "main") == "CreateContainerConfigError")
        assert container_status(p, "main")["state"]["waiting"]["message"] == 'secret "later" not found'
        state.store.create(
            state.rt("", "Secret"), {"metadata": {"name": "later", "namespace": "default"}, "stringData": {"t": "now"}}
        )
        await wait_pod(state, "waits", lambda p: phase(p) == "Succeeded")
        assert await read_log(state, "waits", "main") == "now\n"


async def test_on_failure_restarts_and_keeps_the_previous_log():
    async with running_cluster() as state:
        script = "if [ -f /data/once ]; then echo second; else touch /data/once; echo first; exit 1; fi"
        main = _sh("main", script, volumeMounts=[{"name": "data", "mountPath": "/data"}])
        create_pod(state, pod("retry", main, restartPolicy="OnFailure", volumes=[{"name": "data", "emptyDir": {}}]))
        p = await wait_pod(state, "retry", _done)
        assert phase(p) == "Succeeded"
        status = container_status(p, "main")
        assert status["restartCount"] == 1
        assert status["lastState"]["terminated"]["exitCode"] == 1
        assert await read_log(state, "retry", "main") == "second\n"
        assert await read_log(state, "retry", "main", previous=True) == "first\n"


async def test_always_restarting_failure_is_a_crash_loop():
    async with running_cluster() as state:
        create_pod(state, pod("crash", _sh("main", "exit 2")))
        p = await wait_pod(state, "crash", lambda p: waiting_reason(p, "main") == "CrashLoopBackOff")
        status = container_status(p, "main")
        assert status["restartCount"] >= 1
        assert status["lastState"]["terminated"]["exitCode"] == 2
        assert "BackOff" in [r for r, _ in events(state, "crash")]


async def test_failed_init_container_fails_the_pod_with_restart_never():
    async with running_cluster() as state:
        spec = pod("initfail", _sh("main", "echo never"), initContainers=[_sh("init", "exit 4")], restartPolicy="Never")
        create_pod(state, spec)
        p = await wait_pod(state, "initfail", _done)
        assert phase(p) == "Failed"
        assert container_status(p, "init")["state"]["terminated"]["exitCode"] == 4
        assert waiting_reason(p, "main") == "PodInitializing"
        initialized = {c["type"]: c for c in p["status"]["conditions"]}["Initialized"]
        assert initialized["status"] == "False"


async def test_native_sidecar_starts_first_and_is_stopped_after_the_main_container():
    async with running_cluster() as state:
        sidecar = _sh(
            "side",
            "trap 'echo stopped; exit 0' TERM; touch /shared/up; while true; do sleep 0.05; done",
            restartPolicy="Always",
            volumeMounts=[{"name": "shared", "mountPath": "/shared"}],
        )
        main = _sh(
            "main",
            "for i in $(seq 100); do test -f /shared/up && break; sleep 0.05; done; "
            "test -f /shared/up && echo saw-sidecar",
            volumeMounts=[{"name": "shared", "mountPath": "/shared"}],
        )
        spec = pod(
            "sidecar",
            main,
            initContainers=[sidecar],
            restartPolicy="Never",
            volumes=[{"name": "shared", "emptyDir": {}}],
        )
        create_pod(state, spec)
        p = await wait_pod(state, "sidecar", _done)
        assert phase(p) == "Succeeded", p["status"]
        assert await read_log(state, "sidecar", "main") == "saw-sidecar\n"
        assert await read_log(state, "sidecar", "side") == "stopped\n"
        assert "terminated" in container_status(p, "side")["state"]


async def test_active_deadline_fails_the_pod():
    async with running_cluster() as state:
        create_pod(state, pod("slow", _sh("main", "sleep 100"), activeDeadlineSeconds=1, restartPolicy="Never"))
        p = await wait_pod(state, "slow", _done)
        assert (phase(p), p["status"]["reason"]) == ("Failed", "DeadlineExceeded")
        assert p["status"]["message"] == "Pod was active on the node longer than the specified deadline"
        assert container_status(p, "main")["state"]["terminated"]["exitCode"] == 143


async def test_deletion_sends_sigterm_then_sigkill_after_the_grace_period():
    before = child_processes()
    async with running_cluster() as state:
        stubborn = _sh("main", "trap 'echo got-term' TERM; echo up; while true; do sleep 0.05; done")
        create_pod(state, pod("stubborn", stubborn))
        await wait_pod(state, "stubborn", lambda p: phase(p) == "Running")
        log = kubelet_for(state).worker("default", "stubborn").logs["main"].current
        followed = []
        trap_set = trio.Event()

        async def follow():
            async for chunk in log.read(LogQuery(follow=True)):
                followed.append(chunk)
                trap_set.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            with trio.fail_after(10):
                await trap_set.wait()
            started = trio.current_time()
            delete_pod(state, "stubborn", grace=1)
            await wait_for(state, lambda s: get_pod(s, "stubborn") is None)
            elapsed = trio.current_time() - started
        assert 1 <= elapsed < 5
        assert b"".join(followed) == b"up\ngot-term\n"
        terminated = [m for r, m in events(state, "stubborn") if r == "Killing"]
        assert terminated == ["Stopping container main"]
        assert new_children(before) == []


async def test_a_mount_the_pod_does_not_define_fails_with_a_clear_reason():
    async with running_cluster() as state:
        main = _sh("main", "echo never", volumeMounts=[{"name": "ghost", "mountPath": "/ghost"}])
        create_pod(state, pod("ghost", main, restartPolicy="Never"))
        p = await wait_pod(state, "ghost", _done)
        terminated = container_status(p, "main")["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"]) == (128, "ContainerCannotRun")
        assert "volumeMount 'ghost' of container 'main' names no volume of the pod" in terminated["message"]


async def test_config_volumes_read_only_root_and_mapped_host_path():
    async with running_cluster() as state:
        state.store.create(
            state.rt("", "ConfigMap"),
            {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"app.conf": "x=1"}},
        )
        secret = {
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"pw": base64.b64encode(b"hunter2").decode()},
        }
        state.store.create(state.rt("", "Secret"), secret)
        script = (
            "cat /etc/app/app.conf; echo; cat /etc/creds/pw; echo; "
            "touch /root-file 2>/dev/null || echo read-only-root; touch /tmp/ok && echo tmp-writable; "
            "echo node > /var/log/sim-node/marker && echo host-path"
        )
        mounts = [
            {"name": "cfg", "mountPath": "/etc/app"},
            {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "logs", "mountPath": "/var/log/sim-node"},
        ]
        volumes = [
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "creds", "secret": {"secretName": "creds"}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "logs", "hostPath": {"path": "/var/log/sim-node", "type": "DirectoryOrCreate"}},
        ]
        main = _sh("main", script, volumeMounts=mounts, securityContext={"readOnlyRootFilesystem": True})
        create_pod(state, pod("vols", main, restartPolicy="Never", volumes=volumes))
        p = await wait_pod(state, "vols", _done)
        assert phase(p) == "Succeeded", p["status"]
        assert (await read_log(state, "vols", "main")).splitlines() == [
            "x=1",
            "hunter2",
            "read-only-root",
            "tmp-writable",
            "host-path",
        ]
        assert not _on_host("/var/log/sim-node")


async def test_termination_message_from_the_file_or_the_log():
    async with running_cluster() as state:
        create_pod(state, pod("msg", _sh("main", "echo why > /dev/termination-log; exit 1"), restartPolicy="Never"))
        fallback = _sh("main", "echo last words; exit 2", terminationMessagePolicy="FallbackToLogsOnError")
        create_pod(state, pod("fallback", fallback, restartPolicy="Never"))
        p = await wait_pod(state, "msg", _done)
        assert container_status(p, "main")["state"]["terminated"]["message"] == "why\n"
        p = await wait_pod(state, "fallback", _done)
        assert container_status(p, "main")["state"]["terminated"]["message"] == "last words\n"
        assert not _on_host("/dev/termination-log")


@pytest.mark.skipif(not cgroups.available(), reason="no writable cgroup v1 memory controller on this machine")
async def test_memory_limit_is_enforced_and_reported_as_oom_killed():
    async with running_cluster() as state:
        hog = _sh("main", "python3 -c 'x = bytearray(400 * 1024 * 1024); print(len(x))'")
        hog["resources"] = {"limits": {"memory": "64Mi"}}
        create_pod(state, pod("hog", hog, restartPolicy="Never"))
        p = await wait_pod(state, "hog", _done)
        terminated = container_status(p, "main")["state"]["terminated"]
        assert (phase(p), terminated["exitCode"], terminated["reason"]) == ("Failed", 137, "OOMKilled")


async def test_a_refused_mount_names_the_step_and_the_reason(tmp_path):
    before = child_processes()
    mounts = [Mount(tmp_path / "missing", "/data")]
    with pytest.raises(RuntimeRefused) as e:
        await Holder.start(tmp_path / "sandbox", mounts, "/", read_only_root=False)
    assert str(e.value).startswith("cannot set up the container's mount namespace: mount ")
    assert "on " in str(e.value)
    assert str(e.value).endswith("No such file or directory")
    assert new_children(before) == []


async def test_log_rotation_ends_a_follow_and_later_reads_see_the_new_file():
    async with running_cluster() as state:
        # A line is ~42 bytes stored: the file rotates about every 5 lines (every ~0.25 s).
        script = "i=0; while [ $i -lt 40 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done"
        spec = pod("rotating", _sh("main", script), restartPolicy="Never")
        spec["metadata"]["annotations"] = {"sim.fleet.dev/log-rotate-bytes": "200"}
        create_pod(state, spec)
        await wait_pod(state, "rotating", lambda p: "running" in str((p.get("status") or {}).get("containerStatuses")))
        log = kubelet_for(state).worker("default", "rotating").logs["main"].current
        followed = b""
        with trio.fail_after(10):
            async for chunk in log.read(LogQuery(follow=True)):
                followed += chunk
        # The follow ended at a rotation while the container still ran, and lost no line of its file.
        assert not log.closed
        numbers = [int(line.removeprefix("line-")) for line in followed.decode().split()]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert len(numbers) < 40
        await wait_pod(state, "rotating", _done)
        assert log.rotations >= 3
        # A new read sees the current file only (empty right after a rotation): never the first lines.
        current = (await read_log(state, "rotating", "main")).split()
        assert "line-0" not in current
        assert log.path is not None
        rotated = [line.split()[-1] for line in log.path.with_name(log.path.name + ".1").read_text().splitlines()]
        assert (rotated + current)[-1] == "line-39"
