"""``fleet serve`` as a user starts it: it prints where it listens, serves, and stops on SIGTERM (exit 0);
bad configuration is exit 2 before anything listens. ``fleet run --run-id`` (what a Job of ``--launcher
job`` runs) takes the id it is given, and refuses one the journal already has."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.engine.conftest import close
from tests.serve.conftest import TOKEN, body

pytestmark = pytest.mark.sim_only

STARTUP = 30.0


def _env(config) -> dict[str, str]:
    return {
        **os.environ,
        "FLEET_JOURNAL": str(config.journal),
        "FLEET_ARTIFACTS": str(config.artifacts),
        "SERVE_TEST_TOKEN": TOKEN,
    }


def _args(config) -> list[str]:
    return [
        "serve", "--port", "0", "--playbooks", str(config.playbooks), "-i", str(config.inventory[0]),
        "--token-ref", "env:SERVE_TEST_TOKEN",
    ]  # fmt: skip


def _url(process: subprocess.Popen[str]) -> str:
    """The URL the server printed (read from its stderr, with a deadline)."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    deadline = time.monotonic() + STARTUP
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"fleet serve ended: {seen.decode()}"
            seen += chunk
        found = re.search(rb"serving on (http\S+)", seen)
        if found:
            return found.group(1).decode()
    raise AssertionError(f"fleet serve printed no URL in {STARTUP}s: {seen.decode()}")


def test_fleet_serve_serves_until_sigterm(serve_config):
    process = subprocess.Popen(
        [sys.executable, "-m", "fleet", *_args(serve_config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(serve_config),
    )
    try:
        url = _url(process)
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            answer = client.post("/v1/playbooks/hello/runs", content=body({"name": "from-cli"}))
            assert answer.status_code == 202, answer.text
            run_id = answer.json()["run_id"]
            deadline = time.monotonic() + 60
            while client.get(f"/v1/runs/{run_id}").json()["status"] in ("queued", "running"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert client.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert TOKEN not in (process.stderr.read() or "")  # type: ignore[union-attr]
    finally:
        close(process)
    shown = subprocess.run(
        [sys.executable, "-m", "fleet", "runs", "show", run_id, "-o", "json"],
        capture_output=True, text=True, env=_env(serve_config), timeout=60,
    )  # fmt: skip
    assert json.loads(shown.stdout)["status"] == "succeeded"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda args, d: [a for a in args if a not in ("--token-ref", "env:SERVE_TEST_TOKEN")],
         "needs --token-ref REF and/or --hmac-secret-ref REF"),
        (lambda args, d: [*args, "--token-ref", "env:SERVE_NO_SUCH_VAR"], "SERVE_NO_SUCH_VAR"),
        (lambda args, d: [*args, "--certfile", str(d / "missing.crt"), "--keyfile", str(d / "missing.key")],
         "no such file"),
        (lambda args, d: [*args, "--certfile", str(d / "missing.crt")], "TLS needs both"),
        (lambda args, d: [*args, "--launcher", "cloud"], "--launcher 'cloud'"),
        (lambda args, d: [*args, "--launcher", "job"], "--launcher job needs --job-template"),
        (lambda args, d: [*args, "--playbooks", str(d / "nowhere")], "not a directory"),
    ],
)  # fmt: skip
def test_bad_configuration_is_exit_2_and_nothing_listens(serve_config, tmp_path, change, message):
    args = change(_args(serve_config), tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "fleet", *args], capture_output=True, text=True, env=_env(serve_config), timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "serving on" not in result.stderr


def test_a_broken_playbook_in_the_directory_stops_the_server_from_starting(serve_config):
    (serve_config.playbooks / "broken.yaml").write_text("id: broken\nsteps: []\n")
    twin = "id: hello\nsteps:\n  - {id: a, type: assert, condition: 'true'}\n"
    (serve_config.playbooks / "twin.yml").write_text(twin)
    result = subprocess.run(
        [sys.executable, "-m", "fleet", *_args(serve_config)],
        capture_output=True, text=True, env=_env(serve_config), timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "broken.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_fleet_run_takes_a_preset_run_id_once(serve_config):
    playbook = str(serve_config.playbooks / "hello.yaml")
    run = [sys.executable, "-m", "fleet", "run", playbook, "-i", str(serve_config.inventory[0]), "--set", "name=preset"]
    first = subprocess.run([*run, "--run-id", "preset-run-1"], capture_output=True, text=True, env=_env(serve_config),
                           timeout=120)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "preset-run-1" in first.stderr
    again = subprocess.run([*run, "--run-id", "preset-run-1"], capture_output=True, text=True, env=_env(serve_config),
                           timeout=120)  # fmt: skip
    assert again.returncode == 2
    assert "already in the journal" in again.stderr
    assert "fleet resume preset-run-1" in again.stderr
    bad = subprocess.run([*run, "--run-id", "../etc"], capture_output=True, text=True, env=_env(serve_config),
                         timeout=120)  # fmt: skip
    assert bad.returncode == 2
    assert "is not a run id" in bad.stderr


def test_runs_show_of_one_cluster_lists_its_steps(serve_config, sim2):
    playbook = str(serve_config.playbooks / "hello.yaml")
    env = _env(serve_config)
    done = subprocess.run(
        [sys.executable, "-m", "fleet", "run", playbook, "-i", str(serve_config.inventory[0]), "--set", "name=shown",
         "--run-id", "shown-1"], capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    name = sim2.clusters[0].name
    shown = subprocess.run(
        [sys.executable, "-m", "fleet", "runs", "show", "shown-1", "--cluster", name],
        capture_output=True, text=True, env={**env, "COLUMNS": "160"}, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "config" in shown.stdout
    assert "succeeded" in shown.stdout



def test_a_cluster_whose_connection_cannot_be_built_stops_the_server_from_starting(serve_config, tmp_path):
    """As ``fleet run`` would refuse it before writing anything: the server never listens for it."""
    (tmp_path / "kc.yaml").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: broken\n"
        "contexts: [{name: broken, context: {cluster: gone, user: broken}}]\n"
        "clusters: [{name: broken, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: broken, user: {token: t}}]\n"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"clusters:\n  - name: broken\n    connection: {{kubeconfig: 'file:{tmp_path / 'kc.yaml'}'}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "fleet", *_args(serve_config), "-i", str(broken)],
        capture_output=True, text=True, env=_env(serve_config), timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "broken.yaml:3: clusters[0].connection.kubeconfig" in result.stderr
    assert "no cluster named 'gone'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "serving on" not in result.stderr
