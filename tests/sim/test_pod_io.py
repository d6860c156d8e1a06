"""Pod logs, exec and copy through the official client and kubectl, against fleet.sim (or a real cluster)."""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import watch
from kubernetes.client import ApiException
from kubernetes.stream import stream
from kubernetes.stream.ws_client import V4_CHANNEL_PROTOCOL, WSClient, get_websocket_url

TIMEOUT = 30


def _pod(name, *containers, **spec):
    return {"metadata": {"name": name}, "spec": {"containers": list(containers), **spec}}


def _sh(name, script, **extra):
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


def wait_pod(core_v1, namespace, name, check, timeout=TIMEOUT):
    """Watch the pod until ``check(pod)`` holds; return the pod."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = core_v1.list_namespaced_pod(namespace, field_selector=f"metadata.name={name}")
        for p in listed.items:
            if check(p):
                return p
        remaining = max(1, int(deadline - time.monotonic()))
        for event in watch.Watch().stream(
            core_v1.list_namespaced_pod,
            namespace,
            field_selector=f"metadata.name={name}",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=remaining,
        ):
            if event["type"] != "DELETED" and check(event["object"]):
                return event["object"]
    raise AssertionError(f"pod {name} did not reach the expected state in {timeout}s")


def wait_gone(core_v1, namespace, name, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = core_v1.list_namespaced_pod(namespace, field_selector=f"metadata.name={name}")
        if not listed.items:
            return
        for event in watch.Watch().stream(
            core_v1.list_namespaced_pod,
            namespace,
            field_selector=f"metadata.name={name}",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=max(1, int(deadline - time.monotonic())),
        ):
            if event["type"] == "DELETED":
                return
    raise AssertionError(f"pod {name} was not removed in {timeout}s")


def finished(p):
    return p.status is not None and p.status.phase in ("Succeeded", "Failed")


def running(p):
    return p.status is not None and p.status.phase == "Running"


def _status_of(error: ApiException):
    body = json.loads(error.body)
    return error.status, body["message"]


@pytest.fixture
def kubectl(cluster):
    def run(*args, input=None, check=True):
        command = ["kubectl", "--kubeconfig", str(cluster.kubeconfig_path)]
        if cluster.context:
            command += ["--context", cluster.context]
        result = subprocess.run([*command, *args], input=input, capture_output=True, timeout=TIMEOUT, check=False)
        if check:
            assert result.returncode == 0, result.stderr.decode()
        return result

    return run


def test_log_parameters(core_v1, namespace, kubectl):
    script = "echo early; sleep 2; for i in 1 2 3; do echo line-$i; done; printf partial"
    core_v1.create_namespaced_pod(namespace, _pod("logs", _sh("main", script), restartPolicy="Never"))
    wait_pod(core_v1, namespace, "logs", finished)

    def log(**params):
        return core_v1.read_namespaced_pod_log("logs", namespace, **params)

    assert log() == "early\nline-1\nline-2\nline-3\npartial"
    assert log(tail_lines=2) == "line-3\npartial"
    assert log(limit_bytes=8) == "early\nli"
    assert log(since_seconds=1) == "line-1\nline-2\nline-3\npartial"
    stamped = log(timestamps=True).splitlines()
    stamp, text = stamped[1].split(" ", 1)
    assert text == "line-1"
    assert stamp.endswith("Z")
    assert len(stamp.split(".")[1]) == 10  # nanoseconds and the zone
    since = kubectl("logs", "-n", namespace, "logs", f"--since-time={stamp}").stdout.decode()
    assert since == "line-1\nline-2\nline-3\npartial"
    assert log(container="main", tail_lines=1) == "partial"


def test_log_errors_are_statuses(core_v1, namespace):
    two = _pod("two", _sh("a", "sleep 30"), _sh("b", "sleep 30"), initContainers=[_sh("setup", "true")])
    core_v1.create_namespaced_pod(namespace, two)
    wait_pod(core_v1, namespace, "two", running)
    with pytest.raises(ApiException) as e:
        core_v1.read_namespaced_pod_log("two", namespace)
    assert _status_of(e.value) == (
        400,
        "a container name must be specified for pod two, choose one of: [a b] or one of the init containers: [setup]",
    )
    with pytest.raises(ApiException) as e:
        core_v1.read_namespaced_pod_log("two", namespace, container="a", previous=True)
    assert _status_of(e.value) == (400, 'previous terminated container "a" in pod "two" not found')
    with pytest.raises(ApiException) as e:
        core_v1.read_namespaced_pod_log("absent", namespace)
    assert e.value.status == 404
    core_v1.delete_namespaced_pod("two", namespace, grace_period_seconds=0)
    wait_gone(core_v1, namespace, "two")


def test_previous_log_after_a_restart(core_v1, namespace):
    script = "if [ -f /data/seen ]; then echo second; sleep 30; else touch /data/seen; echo first; exit 1; fi"
    main = _sh("main", script, volumeMounts=[{"name": "data", "mountPath": "/data"}])
    core_v1.create_namespaced_pod(namespace, _pod("again", main, volumes=[{"name": "data", "emptyDir": {}}]))
    p = wait_pod(
        core_v1, namespace, "again", lambda p: running(p) and p.status.container_statuses[0].restart_count == 1
    )
    assert p.status.container_statuses[0].last_state.terminated.exit_code == 1
    assert core_v1.read_namespaced_pod_log("again", namespace, previous=True) == "first\n"
    wait_pod(core_v1, namespace, "again", lambda p: p.status.container_statuses[0].ready)
    core_v1.delete_namespaced_pod("again", namespace, grace_period_seconds=0)
    wait_gone(core_v1, namespace, "again")


def test_follow_streams_until_the_container_ends(core_v1, namespace, kubectl):
    script = "for i in 1 2 3; do echo tick-$i; sleep 0.3; done"
    core_v1.create_namespaced_pod(namespace, _pod("ticker", _sh("main", script), restartPolicy="Never"))
    wait_pod(core_v1, namespace, "ticker", running)
    response = core_v1.read_namespaced_pod_log("ticker", namespace, follow=True, _preload_content=False)
    try:
        chunks = list(response.stream(64))
    finally:
        response.release_conn()
    assert b"".join(chunks) == b"tick-1\ntick-2\ntick-3\n"
    followed = kubectl("logs", "-f", "-n", namespace, "ticker").stdout
    assert followed == b"tick-1\ntick-2\ntick-3\n"


def test_kubectl_logs_follow_sees_lines_while_the_pod_runs(core_v1, namespace, cluster):
    script = "echo begin; while [ ! -f /tmp/stop ]; do sleep 0.05; done; echo end"
    core_v1.create_namespaced_pod(namespace, _pod("live", _sh("main", script), restartPolicy="Never"))
    wait_pod(core_v1, namespace, "live", running)
    command = ["kubectl", "--kubeconfig", str(cluster.kubeconfig_path), "logs", "-f", "-n", namespace, "live"]
    if cluster.context:
        command[3:3] = ["--context", cluster.context]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as follower:
        try:
            assert follower.stdout.readline() == b"begin\n"
            core_v1_exec(core_v1, namespace, "live", ["touch", "/tmp/stop"])
            rest, errors = follower.communicate(timeout=TIMEOUT)
        finally:
            if follower.poll() is None:
                follower.kill()
    assert (rest, follower.returncode) == (b"end\n", 0), errors


def core_v1_exec(core_v1, namespace, name, command, **kwargs):
    return stream(
        core_v1.connect_get_namespaced_pod_exec,
        name,
        namespace,
        command=command,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        **kwargs,
    )


def test_exec_stream_stdin_to_stdout_and_exit_code(core_v1, namespace):
    core_v1.create_namespaced_pod(namespace, _pod("shell", _sh("main", "sleep 300")))
    wait_pod(core_v1, namespace, "shell", running)
    ws = stream(
        core_v1.connect_get_namespaced_pod_exec,
        "shell",
        namespace,
        command=["sh", "-c", "cat; echo to-stderr >&2; exit 5"],
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    try:
        ws.write_stdin("hello from stdin\n")
        ws.close_channel(0)
        ws.run_forever(timeout=TIMEOUT)
        assert ws.read_stdout() == "hello from stdin\n"
        assert ws.read_stderr() == "to-stderr\n"
        assert ws.returncode == 5
    finally:
        ws.close()
    assert core_v1_exec(core_v1, namespace, "shell", ["sh", "-c", "echo $HOSTNAME; pwd"]) == "shell\n/\n"
    core_v1.delete_namespaced_pod("shell", namespace, grace_period_seconds=0)
    wait_gone(core_v1, namespace, "shell")


def test_exec_over_the_v4_protocol(core_v1, api_client, namespace):
    core_v1.create_namespaced_pod(namespace, _pod("v4", _sh("main", "sleep 300")))
    wait_pod(core_v1, namespace, "v4", running)
    config = api_client.configuration
    url = get_websocket_url(
        f"{config.host}/api/v1/namespaces/{namespace}/pods/v4/exec"
        "?command=sh&command=-c&command=echo+out%3B+exit+7&stdout=true&stderr=true"
    )
    headers = {"sec-websocket-protocol": V4_CHANNEL_PROTOCOL}
    config.auth_settings()  # refreshes the bearer token the client would send
    headers["authorization"] = config.api_key.get("authorization") or config.api_key.get("BearerToken", "")
    if config.api_key_prefix.get("authorization"):
        headers["authorization"] = f"{config.api_key_prefix['authorization']} {headers['authorization']}"
    client = WSClient(config, url, headers, capture_all=True)
    try:
        assert client.subprotocol == V4_CHANNEL_PROTOCOL
        client.run_forever(timeout=TIMEOUT)
        assert client.read_stdout() == "out\n"
        assert client.returncode == 7
    finally:
        client.close()
    core_v1.delete_namespaced_pod("v4", namespace, grace_period_seconds=0)
    wait_gone(core_v1, namespace, "v4")


def test_kubectl_exec_and_cp_both_ways_inside_the_pod_mounts(core_v1, namespace, kubectl, tmp_path):
    work = {"name": "work", "emptyDir": {}}
    main = _sh(
        "main",
        "mkdir -p /fleet/working-dir && echo from-container > /fleet/working-dir/made.txt && sleep 300",
        volumeMounts=[{"name": "work", "mountPath": "/fleet"}],
    )
    core_v1.create_namespaced_pod(namespace, _pod("cp", main, volumes=[work]))
    wait_pod(core_v1, namespace, "cp", running)
    exec_ = kubectl(
        "exec", "-n", namespace, "cp", "--", "sh", "-c", "cat /fleet/working-dir/made.txt; exit 3", check=False
    )
    assert (exec_.returncode, exec_.stdout) == (3, b"from-container\n")
    assert not Path("/fleet/working-dir").exists()

    payload = os.urandom(1 << 20)
    source = tmp_path / "in file ü.bin"
    source.write_bytes(payload)
    kubectl("cp", str(source), f"{namespace}/cp:/fleet/working-dir/in file ü.bin")
    listed = kubectl("exec", "-n", namespace, "cp", "--", "sha256sum", "/fleet/working-dir/in file ü.bin").stdout
    assert listed.split()[0].decode() == hashlib.sha256(payload).hexdigest()
    back = tmp_path / "back.bin"
    kubectl("cp", f"{namespace}/cp:/fleet/working-dir/in file ü.bin", str(back))
    assert back.read_bytes() == payload
    made = tmp_path / "made.txt"
    kubectl("cp", f"{namespace}/cp:/fleet/working-dir/made.txt", str(made))
    assert made.read_text() == "from-container\n"
    piped = kubectl("exec", "-i", "-n", namespace, "cp", "--", "cat", input=b"piped\n")
    assert piped.stdout == b"piped\n"
    core_v1.delete_namespaced_pod("cp", namespace, grace_period_seconds=0)
    wait_gone(core_v1, namespace, "cp")


def test_events_are_recorded_for_pods(core_v1, namespace, kubectl):
    image = f"registry.example/app-{uuid.uuid4().hex[:6]}:fail"
    core_v1.create_namespaced_pod(namespace, _pod("nopull", {"name": "app", "image": image}))

    def pull_back_off(p):
        statuses = (p.status and p.status.container_statuses) or []
        return any(s.state.waiting and s.state.waiting.reason == "ImagePullBackOff" for s in statuses)

    wait_pod(core_v1, namespace, "nopull", pull_back_off)
    reasons = {e.reason for e in core_v1.list_namespaced_event(namespace).items if e.involved_object.name == "nopull"}
    assert {"Scheduled", "Pulling", "Failed", "BackOff"} <= reasons
    listed = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    messages = [e["message"] for e in json.loads(listed)["items"]]
    assert any(f'Failed to pull image "{image}"' in m for m in messages)
    core_v1.delete_namespaced_pod("nopull", namespace)
    wait_gone(core_v1, namespace, "nopull")
    with pytest.raises(ApiException) as e:
        core_v1.read_namespaced_pod_log("nopull", namespace)
    assert e.value.status == 404


def test_exec_with_a_terminal_and_into_a_virtual_container(core_v1, namespace):
    core_v1.create_namespaced_pod(namespace, _pod("term", {"name": "web", "image": "nginx"}))
    wait_pod(core_v1, namespace, "term", lambda p: running(p) and p.status.container_statuses[0].ready)
    ws = stream(
        core_v1.connect_get_namespaced_pod_exec,
        "term",
        namespace,
        command=["sh", "-c", "test -t 0 && echo is-a-tty; read line; echo got-$line; exit 4"],
        stdin=True,
        stdout=True,
        stderr=True,
        tty=True,
        _preload_content=False,
    )
    try:
        ws.write_channel(4, json.dumps({"Width": 100, "Height": 30}))
        ws.write_stdin("abc\n")
        ws.run_forever(timeout=TIMEOUT)
        output = ws.read_stdout()
        assert "is-a-tty" in output
        assert "got-abc" in output
        assert ws.returncode == 4
    finally:
        ws.close()
    core_v1.delete_namespaced_pod("term", namespace, grace_period_seconds=0)
    wait_gone(core_v1, namespace, "term")


def test_kubectl_exec_interactive_with_a_terminal(core_v1, namespace, cluster):
    core_v1.create_namespaced_pod(namespace, _pod("it", _sh("main", "sleep 300")))
    wait_pod(core_v1, namespace, "it", running)
    command = [
        "kubectl",
        "--kubeconfig",
        str(cluster.kubeconfig_path),
        "exec",
        "-it",
        "-n",
        namespace,
        "it",
        "--",
        "sh",
    ]
    if cluster.context:
        command[3:3] = ["--context", cluster.context]
    master, slave = os.openpty()
    try:
        with subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, start_new_session=True) as kubectl:
            os.write(master, b"echo hello-$((6*7)); tty; exit 5\n")
            output = _read_until_closed(master, kubectl)
            assert kubectl.wait(timeout=TIMEOUT) == 5
    finally:
        os.close(master)
        os.close(slave)
    assert "hello-42" in output
    assert "/dev/pts/" in output
    core_v1.delete_namespaced_pod("it", namespace, grace_period_seconds=0)
    wait_gone(core_v1, namespace, "it")


def _read_until_closed(fd, process):
    """What a terminal's program wrote until it exited."""
    out = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
        elif process.poll() is not None:
            break
    return out.decode(errors="replace")


def test_kubectl_attach_streams_the_container_output_until_it_ends(core_v1, namespace, kubectl):
    script = "while [ ! -f /tmp/go ]; do sleep 0.05; done; echo after-attach"
    core_v1.create_namespaced_pod(namespace, _pod("attach", _sh("main", script), restartPolicy="Never"))
    wait_pod(core_v1, namespace, "attach", running)
    ws = stream(
        core_v1.connect_get_namespaced_pod_attach,
        "attach",
        namespace,
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    try:
        core_v1_exec(core_v1, namespace, "attach", ["touch", "/tmp/go"])
        ws.run_forever(timeout=TIMEOUT)
        assert ws.read_stdout() == "after-attach\n"
        assert ws.returncode == 0
    finally:
        ws.close()


@pytest.mark.sim_only
def test_the_sim_remembers_what_each_container_wrote_after_its_pod_is_gone(core_v1, namespace, cluster):
    """``SimCluster.container_outputs()``: every line a container run wrote, its last partial line too, with
    the pod's labels, kept once the pod is deleted (what a client following the log must have seen)."""
    name = f"said-{uuid.uuid4().hex[:6]}"
    pod = _pod(name, _sh("main", "echo one; echo two >&2; printf three"), restartPolicy="Never")
    pod["metadata"]["labels"] = {"test": name}
    core_v1.create_namespaced_pod(namespace, pod)
    wait_pod(core_v1, namespace, name, finished)
    core_v1.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    wait_gone(core_v1, namespace, name)
    (said,) = [o for o in cluster.sim.container_outputs() if o.pod == name]
    assert (said.namespace, said.container, said.labels) == (namespace, "main", {"test": name})
    assert said.lines == ("one", "two", "three")
    assert said.count == 3
