import subprocess
import sys

import fleet
from fleet.cli.app import fewer_malloc_arenas


def test_version_flag_prints_the_package_version():
    out = subprocess.run([sys.executable, "-m", "fleet", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"fleet {fleet.__version__}"


def test_help_lists_the_tool():
    out = subprocess.run([sys.executable, "-m", "fleet", "--help"], capture_output=True, text=True, check=True)
    assert "Automate fleets of Kubernetes clusters" in out.stdout


def test_public_all_is_sorted_and_complete():
    assert list(fleet.__all__) == sorted(fleet.__all__)
    for name in fleet.__all__:
        assert hasattr(fleet, name), name


def _unreachable_kubeconfig(tmp_path):
    import yaml

    path = tmp_path / "kubeconfig.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": {"server": "http://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
                "current-context": "gone",
            }
        )
    )
    return path


def test_json_log_format_writes_one_json_object_per_record(tmp_path):
    import json
    import os

    env = {**os.environ, "FLEET_LOG_FORMAT": "json", "FLEET_LOG_LEVEL": "INFO", "FLEET_RETRY_ATTEMPTS": "2",
           "FLEET_RETRY_INITIAL_DELAY": "0.01"}
    out = subprocess.run(
        [sys.executable, "-m", "fleet", "get", "pods", "--kubeconfig", str(_unreachable_kubeconfig(tmp_path))],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert out.returncode == 1
    records = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    retries = [r for r in records if r["logger"] == "fleet.kube.retry"]
    assert retries, out.stderr
    assert {"time", "level", "logger", "message"} <= retries[0].keys()
    assert retries[0]["level"] == "INFO"  # a retry is not a warning; the cluster's error is the one line
    assert "attempt 2/2" in retries[0]["message"]


def _apply_namespace(sim, tmp_path, *flags, env_extra=None):
    import os
    import uuid

    manifest = tmp_path / "ns.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: quiet-{uuid.uuid4().hex[:6]}}}\n")
    env = {k: v for k, v in os.environ.items() if k != "FLEET_LOG_LEVEL"} | (env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "fleet", *flags, "apply", "-f", str(manifest), "-i", str(sim.inventory_path)],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=tmp_path,
    )


def _info_lines(stderr):
    return [line for line in stderr.splitlines() if " INFO " in line]


def test_apply_logs_nothing_below_warning_by_default(sim, tmp_path):
    out = _apply_namespace(sim, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "created" in out.stdout  # the table says what happened
    assert out.stderr == ""


def test_v_shows_info_lines_and_vv_debug_lines(sim, tmp_path):
    info = _apply_namespace(sim, tmp_path, "-v")
    assert info.returncode == 0, info.stderr
    applied = [line for line in _info_lines(info.stderr) if "fleet.kube.apply: applied Namespace/" in line]
    assert len(applied) == 3, info.stderr  # one per cluster
    assert " DEBUG " not in info.stderr
    debug = _apply_namespace(sim, tmp_path, "-vv")
    assert debug.returncode == 0, debug.stderr
    assert " DEBUG " in debug.stderr


def test_fleet_log_level_wins_over_the_flag(sim, tmp_path):
    quiet = _apply_namespace(sim, tmp_path, "-v", env_extra={"FLEET_LOG_LEVEL": "warning"})
    assert quiet.returncode == 0, quiet.stderr
    assert _info_lines(quiet.stderr) == []
    loud = _apply_namespace(sim, tmp_path, env_extra={"FLEET_LOG_LEVEL": "INFO"})
    assert len(_info_lines(loud.stderr)) >= 3, loud.stderr


def test_the_cli_caps_glibc_malloc_arenas_unless_the_user_chose(monkeypatch):
    """(benchmarks/fanout.py measures what it saves.) mallopt answers 1 when glibc took the setting."""
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert fewer_malloc_arenas() is sys.platform.startswith("linux")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert fewer_malloc_arenas() is False
