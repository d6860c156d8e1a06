"""Reattaching: after fleet was SIGKILLed, after a detach, to a finished pod; resume off; duplicates."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from fleet.pods.models import PodTask
from fleet.pods.runner import Detach, run_pod_task
from tests.pods.resume_child import RESUMABLE_STEP
from tests.pods.test_run_sim import pods_of, wait_running

DEADLINE = 60
CHILD = Path(__file__).with_name("resume_child.py")


def _child_args(cluster, namespace, ctx, tmp_path):
    """resume_child.py's arguments: the same cluster, namespace and run as this test's context."""
    artifacts = str(tmp_path / "child-artifacts")
    return [str(cluster.kubeconfig_path), cluster.context or "", namespace, ctx.run_id, artifacts]


async def test_resume_after_sigkill_mid_step(kube, namespace, context, cluster, store, tmp_path):
    ctx = context("resumable")
    args = _child_args(cluster, namespace, ctx, tmp_path)
    with trio.fail_after(DEADLINE):
        process = await trio.lowlevel.open_process([sys.executable, str(CHILD), *args], stdout=subprocess.DEVNULL)
        try:
            await wait_running(kube, namespace)
        finally:
            process.kill()
            await process.wait()
        assert process.returncode == -9
        assert len(await pods_of(kube, namespace)) == 1
        task = PodTask.model_validate({**RESUMABLE_STEP, "namespace": namespace})
        result = await run_pod_task(kube, task, context=ctx)
    assert result.resumed
    assert result.outputs == {"done": True}
    assert b"".join([c async for c in store.read_chunks(result.files["out.txt"].key)]) == b"survives"
    assert await pods_of(kube, namespace) == []


async def test_sigterm_leaves_the_pod_for_a_resume(kube, namespace, context, cluster, store, tmp_path):
    ctx = context("resumable")
    args = _child_args(cluster, namespace, ctx, tmp_path)
    with trio.fail_after(DEADLINE):
        process = await trio.lowlevel.open_process([sys.executable, str(CHILD), *args], stdout=subprocess.DEVNULL)
        try:
            await wait_running(kube, namespace)
            process.terminate()
            await process.wait()
            assert process.returncode == 0  # fleet stopped cleanly, and left the pod alone
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert len(await pods_of(kube, namespace)) == 1
        task = PodTask.model_validate({**RESUMABLE_STEP, "namespace": namespace})
        result = await run_pod_task(kube, task, context=ctx)
    assert result.resumed
    assert result.outputs == {"done": True}


async def test_ctrl_c_deletes_the_pod_even_with_delete_false(kube, namespace, context, cluster, tmp_path):
    ctx = context("resumable")
    args = [*_child_args(cluster, namespace, ctx, tmp_path), "keep"]
    with trio.fail_after(DEADLINE):
        process = await trio.lowlevel.open_process(
            [sys.executable, str(CHILD), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            await wait_running(kube, namespace)
            process.send_signal(signal.SIGINT)
            await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.stderr is not None
        stderr = (await process.stderr.receive_some(1 << 20) or b"").decode()
        assert "KeyboardInterrupt" in stderr
        assert await pods_of(kube, namespace) == []


async def test_detach_keeps_the_pod_and_a_resume_collects_it(kube, namespace, context, store):
    detach = Detach()
    ctx = context("detached", detach=detach)
    task = PodTask.model_validate({**RESUMABLE_STEP, "namespace": namespace})
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(run_pod_task, kube, task, context=ctx))
            await wait_running(kube, namespace)
            detach.detach()
            nursery.cancel_scope.cancel()
        assert len(await pods_of(kube, namespace)) == 1
        result = await run_pod_task(kube, task, context=context("detached", attempt=2))
    assert result.resumed
    assert result.outputs == {"done": True}
    assert "out.txt" in result.files


async def test_finished_pod_is_collected_at_once_and_resume_off_creates_new(kube, namespace, context):
    options = {"namespace": namespace, "image": "busybox", "commands": ["""echo '::{"outputs": {"n": 1}}::'"""]}
    ctx = context("finished")
    with trio.fail_after(DEADLINE):
        first = await run_pod_task(kube, PodTask.model_validate({**options, "delete": False}), context=ctx)
        start = trio.current_time()
        again = await run_pod_task(kube, PodTask.model_validate({**options, "delete": False}), context=ctx)
        # Collected at once: no wait for waitUntilRunning (PT10M) or waitForLogs (PT30S).
        assert trio.current_time() - start < 5
        fresh = await run_pod_task(kube, PodTask.model_validate({**options, "resume": False}), context=ctx)
    assert not first.resumed
    assert again.resumed
    assert again.pod_name == first.pod_name
    assert again.outputs == {"n": 1}
    assert again.exit_code == 0
    assert not fresh.resumed
    assert fresh.pod_name != first.pod_name


async def test_two_active_pods_newest_wins_other_deleted_and_reported(kube, namespace, context):
    options = {"namespace": namespace, "image": "busybox", "commands": ["sleep 3", "echo done"], "resume": False}
    ctx = context("twice")
    names = []
    with trio.fail_after(DEADLINE):
        for _ in range(2):
            detach = Detach()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    functools.partial(
                        run_pod_task, kube, PodTask.model_validate(options), context=context("twice", detach=detach)
                    )
                )
                names.append(await wait_running_not(kube, namespace, names))
                detach.detach()
                nursery.cancel_scope.cancel()
        result = await run_pod_task(kube, PodTask.model_validate({**options, "resume": True}), context=ctx)
    assert result.resumed
    assert result.pod_name == names[1]
    assert result.replaced_pods == [names[0]]
    assert await pods_of(kube, namespace) == []


async def wait_running_not(kube, namespace, known):
    async for event in kube.watch(f"/api/v1/namespaces/{namespace}/pods"):
        name = event.object["metadata"]["name"]
        if event.type != "DELETED" and name not in known and event.object.get("status", {}).get("phase") == "Running":
            return name
    raise AssertionError("the watch ended")


@pytest.mark.sim_only
async def test_a_new_run_skips_the_resume_lookup(kube, namespace, context, cluster):
    options = {"namespace": namespace, "image": "busybox", "commands": ["true"]}
    await trio.to_thread.run_sync(cluster.sim.clear_requests)
    with trio.fail_after(DEADLINE):
        await run_pod_task(kube, PodTask.model_validate(options), context=context("fresh", new_run=True))
        fresh = await trio.to_thread.run_sync(cluster.sim.requests)
        await trio.to_thread.run_sync(cluster.sim.clear_requests)
        await run_pod_task(kube, PodTask.model_validate(options), context=context("resumed"))
        resumed = await trio.to_thread.run_sync(cluster.sim.requests)

    def lookups(records):
        return [r for r in records if r.method == "GET" and "labelSelector" in str(r.query) and namespace in r.path]

    assert lookups(fresh) == []
    assert len(lookups(resumed)) == 1
