"""A context the kubeconfig lacks is an input error that lists the contexts the file has: from the library
and, before any cluster is contacted, from the CLI (exit code 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleet.errors import InputError
from fleet.kube import KubeClient

ROOT = Path(__file__).resolve().parents[2]


def _kubeconfig(tmp_path: Path, *, current: str | None = "a") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        # Port 1: nothing listens, so a test that got as far as a request would fail differently.
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "never-sent"}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in ("a", "b")],
    }
    if current:
        config["current-context"] = current
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_library_names_the_contexts_of_the_file(tmp_path):
    path = _kubeconfig(tmp_path)
    with pytest.raises(InputError) as caught:
        KubeClient.from_kubeconfig(path, context="nope")
    assert str(caught.value) == f"{path}: the kubeconfig has no context 'nope'; its contexts: a, b"


def test_no_current_context_and_none_named(tmp_path):
    path = _kubeconfig(tmp_path, current=None)
    with pytest.raises(InputError, match="has no current-context and no context was named; its contexts: a, b"):
        KubeClient.from_kubeconfig(path)


def test_a_current_context_that_is_not_there(tmp_path):
    path = _kubeconfig(tmp_path, current="gone")
    with pytest.raises(InputError, match="has no context 'gone'; its contexts: a, b"):
        KubeClient.from_kubeconfig(path)


@pytest.mark.parametrize("contexts", [["nope"], ["a", "nope"]])
def test_the_cli_says_which_contexts_there_are_and_exits_2(tmp_path, contexts):
    path = _kubeconfig(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    flags = [arg for context in contexts for arg in ("--context", context)]
    out = subprocess.run(
        [sys.executable, "-m", "fleet", "get", "pods", "--kubeconfig", str(path), *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"error: {path}: the kubeconfig has no context 'nope'; its contexts: a, b\n"
    assert out.stdout == ""  # no table: no cluster was contacted
