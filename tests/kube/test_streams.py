"""Exec (stdin → stdout/stderr + exit code) and line streams (pod logs) through KubeClient."""

import trio

from fleet.kube.apply import apply
from fleet.kube.get import get

POD = """
apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "echo first; echo second; sleep 600"]
"""


async def test_exec_sends_stdin_and_returns_output_and_exit_code(kube, namespace):
    await apply(kube, POD, namespace=namespace, wait_until_ready=60)
    with trio.fail_after(30):
        result = await kube.exec(
            namespace, "shell", ["sh", "-c", "cat; echo oops >&2; exit 3"], container="main", stdin=b"hello\x00bytes"
        )
    assert result.stdout == b"hello\x00bytes"
    assert result.stderr == b"oops\n"
    assert result.exit_code == 3
    with trio.fail_after(30):
        ok = await kube.exec(namespace, "shell", ["true"])
    assert ok.exit_code == 0


async def test_stream_lines_follows_a_pod_log_and_cancels_promptly(kube, namespace):
    await apply(kube, POD, namespace=namespace, wait_until_ready=60)
    lines = []
    path = f"/api/v1/namespaces/{namespace}/pods/shell/log"
    with trio.move_on_after(15) as scope:
        async for line in kube.stream_lines(path, {"follow": True, "container": "main"}):
            lines.append(line)
            if len(lines) == 2:
                break
    assert not scope.cancelled_caught
    assert lines == ["first", "second"]
    # The stream stays open (the container sleeps): cancelling must not wait for it.
    start = trio.current_time()
    with trio.move_on_after(0.5):
        async for line in kube.stream_lines(path, {"follow": True, "container": "main"}):
            lines.append(line)
    assert trio.current_time() - start < 2
    pod = await get(kube, "pods", "shell", namespace=namespace)
    assert pod.item["status"]["phase"] == "Running"
