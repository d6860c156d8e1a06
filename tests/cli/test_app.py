import subprocess
import sys

import fleet


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
