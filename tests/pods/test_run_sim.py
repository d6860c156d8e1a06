"""The pod step end to end on the simulated cluster (or FLEET_TEST_KUBECONFIG's)."""

from __future__ import annotations

import functools
import hashlib
import json

import pytest
import trio

from fleet.errors import ApiError
from fleet.pods.identity import ATTEMPT_LABEL, CLUSTER_LABEL, MANAGED_BY, RUN_LABEL, STEP_LABEL
from fleet.pods.render import pod_task
from fleet.pods.runner import PodStepFailed, run_pod_task

DEADLINE = 60


def task(namespace, variables=None, **options):
    return pod_task({"namespace": namespace, **options}, variables or {})


async def pod_exists(kube, namespace, name):
    try:
        await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
    except ApiError as e:
        if e.code == 404:
            return False
        raise
    return True


async def pods_of(kube, namespace):
    listing = await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods")
    return [p for p in listing["items"] if not p["metadata"].get("deletionTimestamp")]


async def wait_running(kube, namespace):
    """The name of the first Running pod in ``namespace``, watch-driven."""
    async for event in kube.watch(f"/api/v1/namespaces/{namespace}/pods"):
        if event.type != "DELETED" and event.object.get("status", {}).get("phase") == "Running":
            return event.object["metadata"]["name"]
    raise AssertionError("the watch ended")


async def test_echo_logs_outputs_metrics_and_cleanup(kube, namespace, context, caplog):
    caplog.set_level("INFO", logger="fleet.pods.log")
    step = task(
        namespace,
        image="busybox",
        commands=[
            "echo hi",
            """echo '::{"outputs": {"answer": 42, "text": "a  b"}}::'""",
            """echo '::{"metrics": [{"name": "rows", "type": "counter", "value": 7}]}::'""",
            """echo '::{"logs": [{"level": "warning", "message": "careful"}]}::'""",
        ],
    )
    with trio.fail_after(DEADLINE):
        result = await run_pod_task(kube, step, context=context("echo"))
    assert result.exit_code == 0
    assert result.phase == "Succeeded"
    assert result.outputs == {"answer": 42, "text": "a  b"}
    assert [(m.name, m.value) for m in result.metrics] == [("rows", 7.0)]
    assert result.node
    assert result.start_time
    assert result.end_time
    assert result.end_time >= result.start_time
    outputs = result.as_outputs()
    assert (outputs["exitCode"], outputs["phase"], outputs["podName"]) == (0, "Succeeded", result.pod_name)
    assert (outputs["node"], outputs["startTime"], outputs["endTime"]) == (
        result.node,
        result.start_time,
        result.end_time,
    )
    assert outputs["vars"] == {"answer": 42, "text": "a  b"}
    assert outputs["metrics"] == [{"name": "rows", "type": "counter", "value": 7.0, "tags": {}}]
    lines = [
        (r.levelname, r.getMessage(), r.container, r.step, r.cluster)
        for r in caplog.records
        if r.name == "fleet.pods.log"
    ]
    assert ("INFO", "hi", "main", "echo", context().cluster) in lines
    assert ("WARNING", "careful", "main", "echo", context().cluster) in lines
    assert not any("::" in line[1] for line in lines)
    assert not await pod_exists(kube, namespace, result.pod_name)


async def test_labels_env_and_delete_false(kube, namespace, context):
    ctx = context("Labels & Env", attempt=3)
    step = task(
        namespace,
        image="busybox",
        commands=[
            'printf \'::{"outputs": {"wd": "%s", "od": "%s", "pwd": "%s"}}::\\n\' "$WORKING_DIR" "$OUTPUT_DIR" "$(pwd)"'
        ],
        outputDirectory=True,
        delete=False,
    )
    with trio.fail_after(DEADLINE):
        result = await run_pod_task(kube, step, context=ctx)
    assert result.outputs == {
        "wd": "/fleet/working-dir",
        "od": "/fleet/working-dir/output",
        "pwd": "/fleet/working-dir",
    }
    pod = await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{result.pod_name}")
    labels = pod["metadata"]["labels"]
    assert labels[MANAGED_BY] == "fleet"
    assert labels[RUN_LABEL] == ctx.run_id
    assert labels[CLUSTER_LABEL] == ctx.cluster
    assert labels[STEP_LABEL].startswith("Labels-Env-")
    assert labels[ATTEMPT_LABEL] == "3"
    assert result.pod_name.startswith("labels-env-")


async def test_seed_cp_data_to_out(kube, namespace, context, store):
    """Seed 003's PodCreate example: a full spec, an input file, an output file."""
    step = task(
        namespace,
        spec={
            "containers": [
                {
                    "name": "unittest",
                    "image": "centos",
                    "command": ["cp", "{{workingDir}}/data.txt", "{{workingDir}}/out.txt"],
                }
            ],
            "restartPolicy": "Never",
        },
        waitUntilRunning="PT3M",
        inputFiles={"data.txt": "{{ inputs.file }}"},
        outputFiles=["out.txt"],
        variables={"inputs": {"file": "seed data"}},
    )
    with trio.fail_after(DEADLINE):
        result = await run_pod_task(kube, step, context=context("pod_create"))
    assert list(result.files) == ["out.txt"]
    data = b"".join([c async for c in store.read_chunks(result.files["out.txt"].key)])
    assert data == b"seed data"


async def test_seed_python_script_outputs_and_json_file(kube, namespace, context, store):
    """Seed 001's Python script: environment info as outputs and as a JSON file."""
    script = """
import json, platform, sys
print("Hello from a Kubernetes runner!")
env_info = {
    "host": platform.node(),
    "platform": platform.platform(),
    "os_arch": f"{sys.platform}/{platform.machine()}",
    "python_version": platform.python_version(),
}
print("::" + json.dumps({"outputs": env_info}) + "::")
with open("environment_info.json", "w") as json_file:
    json.dump(env_info, json_file, indent=4)
"""
    step = task(
        namespace,
        image="ghcr.io/kestra-io/pydata:latest",
        interpreter=["python3", "-c"],
        script=script,
        outputFiles=["*.json"],
        resources={"request": {"cpu": "500m", "memory": "128Mi"}},
        pullPolicy="Always",
    )
    with trio.fail_after(DEADLINE):
        result = await run_pod_task(kube, step, context=context("send_data"))
    assert set(result.outputs) == {"host", "platform", "os_arch", "python_version"}
    stored = b"".join([c async for c in store.read_chunks(result.files["environment_info.json"].key)])
    assert json.loads(stored) == result.outputs


async def test_seed_restricted_environment(kube, namespace, context, store):
    """Seed 003's restricted example: containerDefaultSpec with securityContext and a tmp volume."""
    step = task(
        namespace,
        containerDefaultSpec={
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": True,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        spec={
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [
                {
                    "name": "main",
                    "image": "centos",
                    "command": ["cp", "{{workingDir}}/data.txt", "{{workingDir}}/out.txt"],
                }
            ],
            "restartPolicy": "Never",
        },
        inputFiles={"data.txt": "restricted"},
        outputFiles=["out.txt"],
    )
    with trio.fail_after(DEADLINE):
        result = await run_pod_task(kube, step, context=context("pod_create_secure"))
    data = b"".join([c async for c in store.read_chunks(result.files["out.txt"].key)])
    assert data == b"restricted"


async def test_files_binary_many_small_odd_names_and_refs_as_inputs(kube, namespace, context, store, tmp_path):
    binary = bytes(range(256)) * 4096 + b"\x00\xff"
    names = {f"many/f{i:03d}.txt": f"file {i}\n" for i in range(150)}
    odd = {"with space.txt": "space", "ünïcödé 名前.txt": "unicode", "sub dir/ä b.txt": "nested"}
    source = tmp_path / "bin"
    source.write_bytes(binary)
    ref = await store.put_file("inputs/bin", source)
    step = task(
        namespace,
        image="busybox",
        commands=[
            "cp data.bin copy.bin",
            "mkdir -p $OUTPUT_DIR/deep && cp 'with space.txt' \"$OUTPUT_DIR/deep/é.txt\"",
        ],
        inputFiles={"data.bin": ref.uri, **names, **odd},
        outputFiles=["copy.bin", "many/**", "*.txt", "sub dir/*"],
        outputDirectory=True,
    )
    with trio.fail_after(DEADLINE):
        result = await run_pod_task(kube, step, context=context("files"))
    expected = {"copy.bin": binary, "deep/é.txt": b"space", **{k: v.encode() for k, v in {**names, **odd}.items()}}
    assert set(result.files) == set(expected)
    for name, data in expected.items():
        assert result.files[name].sha256 == hashlib.sha256(data).hexdigest(), name
    # A stored output is an input of a later step.
    again = task(
        namespace,
        image="busybox",
        commands=["cat again.bin > /dev/null"],
        inputFiles={"again.bin": result.files["copy.bin"].uri},
    )
    with trio.fail_after(DEADLINE):
        await run_pod_task(kube, again, context=context("again"))


async def test_sync_working_directory_and_symlinks_refused(kube, namespace, context):
    step = task(
        namespace,
        image="busybox",
        commands=["echo a > a.txt", "mkdir d && echo b > d/b.bin", "ln -s /etc/passwd link", "ln -s a.txt rel"],
        syncWorkingDirectory=True,
    )
    with trio.fail_after(DEADLINE):
        result = await run_pod_task(kube, step, context=context("sync"))
    assert set(result.files) == {"a.txt", "d/b.bin"}
    assert set(result.refused_files) == {"./link", "./rel"}


async def test_nonzero_exit_fails_with_last_lines(kube, namespace, context):
    step = task(
        namespace, image="busybox", commands=["echo first", "echo 'the last words'", "exit 3"], outputFiles=["x"]
    )
    with trio.fail_after(DEADLINE), pytest.raises(PodStepFailed) as failed:
        await run_pod_task(kube, step, context=context("fails"))
    message = str(failed.value)
    assert "container main exited with 3 (Error)" in message
    assert "the last words" in message
    assert failed.value.result is not None
    assert failed.value.result.exit_code == 3
    assert not await pod_exists(kube, namespace, failed.value.result.pod_name)


async def test_killed_137_is_likely_out_of_memory(kube, namespace, context):
    # Kubernetes expands $$ in a command to $
    step = task(namespace, image="busybox", commands=["kill -9 $$$$"])
    with trio.fail_after(DEADLINE), pytest.raises(PodStepFailed, match=r"killed \(137\), likely out of memory"):
        await run_pod_task(kube, step, context=context("oom"))


async def test_image_pull_failure_is_fast_and_deletes(kube, namespace, context):
    step = task(namespace, image="nginx:fail", commands=["true"])
    start = trio.current_time()
    with trio.fail_after(20), pytest.raises(PodStepFailed, match=r"cannot start: (ErrImagePull|ImagePullBackOff)") as e:
        await run_pod_task(kube, step, context=context("pull"))
    assert trio.current_time() - start < 5  # not waitUntilRunning (PT10M)
    assert "Warning events:" in str(e.value)
    assert 'Failed to pull image "nginx:fail"' in str(e.value)
    assert await pods_of(kube, namespace) == []


async def test_unschedulable_reports_the_scheduler_message(kube, namespace, context):
    step = task(namespace, image="busybox", commands=["true"], nodeSelector={"no-such": "node"})
    with trio.fail_after(20), pytest.raises(PodStepFailed, match=r"Unschedulable: .+"):
        await run_pod_task(kube, step, context=context("unsched"))
    assert await pods_of(kube, namespace) == []


async def test_deadline_exceeded(kube, namespace, context):
    step = task(namespace, image="busybox", commands=["sleep 30"], podSpec={"activeDeadlineSeconds": 1})
    with trio.fail_after(DEADLINE), pytest.raises(PodStepFailed, match="DeadlineExceeded"):
        await run_pod_task(kube, step, context=context("deadline"))


async def test_wait_until_running_fails_and_deletes(kube, namespace, context):
    step = task(
        namespace,
        image="busybox",
        commands=["true"],
        podSpec={"initContainers": [{"name": "slow", "image": "busybox", "command": ["sleep", "30"]}]},
        waitUntilRunning="PT1S",
    )
    with trio.fail_after(20), pytest.raises(PodStepFailed, match="did not start within waitUntilRunning"):
        await run_pod_task(kube, step, context=context("slow-start"))
    assert await pods_of(kube, namespace) == []


async def test_wait_until_completion_fails_and_deletes_even_with_delete_false(kube, namespace, context):
    step = task(namespace, image="busybox", commands=["sleep 30"], waitUntilCompletion="PT1S", delete=False)
    with trio.fail_after(20), pytest.raises(PodStepFailed, match="did not complete within"):
        await run_pod_task(kube, step, context=context("slow"))
    assert await pods_of(kube, namespace) == []


@pytest.mark.sim_only
async def test_cancel_deletes_the_pod_exactly_once(kube, namespace, context, cluster):
    step = task(namespace, image="busybox", commands=["sleep 30"])
    with trio.move_on_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(run_pod_task, kube, step, context=context("cancelled")))
            with trio.fail_after(20):
                await wait_running(kube, namespace)
            nursery.cancel_scope.cancel()
    assert await pods_of(kube, namespace) == []
    requests = await trio.to_thread.run_sync(cluster.sim.requests)
    deletes = [r for r in requests if r.method == "DELETE" and f"/namespaces/{namespace}/pods/" in r.path]
    assert len(deletes) == 1
    assert "gracePeriodSeconds=0" in str(deletes[0].query)


async def test_pod_deleted_by_someone_else_ends_the_step(kube, namespace, context):
    step = task(namespace, image="busybox", commands=["sleep 30"])

    async def delete_when_running():
        name = await wait_running(kube, namespace)
        await kube.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", query={"gracePeriodSeconds": 0})

    failure = None
    start = trio.current_time()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(delete_when_running)
            try:
                await run_pod_task(kube, step, context=context("deleted"))
            except PodStepFailed as e:
                failure = e
    assert "was deleted" in str(failure)
    assert trio.current_time() - start < 10  # ends the step, never a reconnect loop


@pytest.mark.slow
async def test_100_mb_in_and_out_intact(kube, namespace, context, store, tmp_path):
    size = 100 * 1024 * 1024 + 12345
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as sink:
        block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB, not compressible by accident
        written = 0
        while written < size:
            part = block[: size - written]
            sink.write(part)
            digest.update(part)
            written += len(part)
    ref = await store.put_file("inputs/big.bin", source)
    step = task(
        namespace,
        image="busybox",
        commands=["cp big.bin big-out.bin"],
        inputFiles={"big.bin": ref.uri},
        outputFiles=["big-out.bin"],
    )
    with trio.fail_after(120):
        result = await run_pod_task(kube, step, context=context("big"))
    assert result.files["big-out.bin"].size == size
    assert result.files["big-out.bin"].sha256 == digest.hexdigest()


async def test_pull_credentials_secret_lives_and_dies_with_the_pod(kube, namespace, context, caplog):
    caplog.set_level("DEBUG")
    credentials = {"registry": "registry.example", "username": "robot", "password": "pa55-w0rd-xyz"}
    kept = task(namespace, image="busybox", commands=["true"], credentials=credentials, delete=False)
    with trio.fail_after(DEADLINE):
        result = await run_pod_task(kube, kept, context=context("pull-secret"))
        pod = await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{result.pod_name}")
        secret_name = pod["spec"]["imagePullSecrets"][0]["name"]
        secret = await kube.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{secret_name}")
        assert secret["type"] == "kubernetes.io/dockerconfigjson"
        deleted = task(namespace, image="busybox", commands=["true"], credentials=credentials, resume=False)
        again = await run_pod_task(kube, deleted, context=context("pull-secret-2"))
        secrets = await kube.request("GET", f"/api/v1/namespaces/{namespace}/secrets")
    names = [s["metadata"]["name"] for s in secrets["items"]]
    assert f"{again.pod_name}-pull" not in names
    assert secret_name in names
    assert "pa55-w0rd-xyz" not in caplog.text
