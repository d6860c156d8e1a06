"""Pod step semantics on the sim: live logs, no fixed wait after the pod, the step timeout, GPUs and the
scheduling properties, OOMKilled, and an earlier step's output file as an input through a template."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import trio

from fleet.pods.render import pod_task
from fleet.pods.runner import PodStepFailed, run_pod_task
from tests.pods.test_run_sim import pods_of

DEADLINE = 60


def task(namespace, variables=None, **options):
    return pod_task({"namespace": namespace, **options}, variables or {})


class Lines(logging.Handler):
    """Pod log lines as fleet emits them, with the trio time each arrived."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[float, logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((trio.current_time(), record))


@pytest.fixture
def lines():
    handler = Lines()
    logger = logging.getLogger("fleet.pods.log")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_logs_stream_live_from_every_container_tagged(kube, namespace, context, lines):
    step = task(
        namespace,
        image="busybox",
        commands=["echo started", "sleep 2", "echo finished"],
        podSpec={
            "initContainers": [{"name": "setup", "image": "busybox", "command": ["sh", "-c", "echo from-setup"]}],
            "containers": [{"name": "helper", "image": "busybox", "command": ["sh", "-c", "echo from-helper"]}],
        },
    )
    with trio.fail_after(DEADLINE):
        await run_pod_task(kube, step, context=context("live"))
    ended = trio.current_time()
    seen = {(r.getMessage(), r.container, r.step, r.cluster, r.pod): at for at, r in lines.records}
    cluster = context().cluster
    pod = next(iter(seen))[4]
    started = seen[("started", "main", "live", cluster, pod)]
    assert ("finished", "main", "live", cluster, pod) in seen
    assert ("from-helper", "helper", "live", cluster, pod) in seen
    assert ("from-setup", "setup", "live", cluster, pod) in seen  # init containers too
    # The first line reached the log while the pod still ran (it sleeps 2 s after it).
    assert ended - started > 1.5


async def test_no_fixed_wait_after_the_pod_and_no_line_lost(kube, namespace, context, lines):
    # waitForLogs is only an upper bound: a step whose streams close at once does not wait for it.
    step = task(
        namespace,
        image="busybox",
        commands=["i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done"],
        waitForLogs="PT1H",
    )
    start = trio.current_time()
    with trio.fail_after(DEADLINE):
        await run_pod_task(kube, step, context=context("burst"))
    assert trio.current_time() - start < 15
    assert [r.getMessage() for _, r in lines.records] == [f"line-{i}" for i in range(3000)]


async def test_the_step_timeout_wins_over_wait_until_completion(kube, namespace, context):
    step = task(namespace, image="busybox", commands=["sleep 30"], waitUntilCompletion="PT1H", delete=False)
    start = trio.current_time()
    with trio.fail_after(20), pytest.raises(PodStepFailed, match=r"did not complete within 1s"):
        await run_pod_task(kube, step, context=context("timed", step_timeout=timedelta(seconds=1)))
    assert trio.current_time() - start < 10
    assert await pods_of(kube, namespace) == []


async def test_gpu_node_selector_service_account_and_pull_policy_reach_the_pod(kube, namespace, context):
    step = task(
        namespace,
        image="busybox",
        commands=["echo $NODE $SA"],
        containerSpec={
            "env": [
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            ]
        },
        resources={"request": {"cpu": "100m"}, "limit": {"nvidia.com/gpu": 1, "memory": "64Mi"}},
        nodeSelector={"nvidia.com/gpu.present": "true"},
        serviceAccountName="runner",
        pullPolicy="IF_NOT_PRESENT",
        delete=False,
    )
    with trio.fail_after(DEADLINE):
        result = await run_pod_task(kube, step, context=context("gpu"))
    pod = await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{result.pod_name}")
    main = pod["spec"]["containers"][0]
    assert main["resources"] == {"requests": {"cpu": "100m"}, "limits": {"nvidia.com/gpu": "1", "memory": "64Mi"}}
    assert main["imagePullPolicy"] == "IfNotPresent"
    assert pod["spec"]["serviceAccountName"] == "runner"
    nodes = await kube.request("GET", "/api/v1/nodes", query={"labelSelector": "nvidia.com/gpu.present=true"})
    assert result.node in {n["metadata"]["name"] for n in nodes["items"]}
    logged = await kube.request_bytes("GET", f"/api/v1/namespaces/{namespace}/pods/{result.pod_name}/log")
    assert logged.decode().split() == [result.node, "runner"]


async def test_out_memory_is_reported_as_oom_killed(kube, namespace, context):
    step = task(
        namespace,
        image="python",
        interpreter=["python3", "-c"],
        script="x = bytearray(400 * 1024 * 1024)\nprint(len(x))",
        resources={"limit": {"memory": "64Mi"}},
    )
    with (
        trio.fail_after(DEADLINE),
        pytest.raises(PodStepFailed, match=r"container main was OOMKilled \(exit code 137\)"),
    ):
        await run_pod_task(kube, step, context=context("hog"))
    assert await pods_of(kube, namespace) == []


async def test_an_earlier_output_file_is_an_input_through_a_template(kube, namespace, context, store):
    first = task(namespace, image="busybox", commands=["printf exported > {{ outputDir }}/export.csv"])
    with trio.fail_after(DEADLINE):
        exported = await run_pod_task(kube, first, context=context("export"))
    outputs = exported.as_outputs()
    assert set(outputs["outputFiles"]) == {"export.csv"}
    second = task(
        namespace,
        image="busybox",
        commands=["cp data.csv {{ outputDir }}/copy.csv"],
        inputFiles={"data.csv": "{{ outputs.export.outputFiles['export.csv'] }}"},
        variables={"outputs": {"export": outputs}},
    )
    with trio.fail_after(DEADLINE):
        copied = await run_pod_task(kube, second, context=context("import"))
    data = b"".join([c async for c in store.read_chunks(copied.files["copy.csv"].key)])
    assert data == b"exported"
