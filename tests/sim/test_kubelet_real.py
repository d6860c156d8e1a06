"""Containers with a command run as real processes inside the pod's mounts."""

from pathlib import Path

from tests.sim.kubelet_harness import (
    container_status,
    create_pod,
    phase,
    pod,
    read_log,
    running_cluster,
    wait_pod,
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
