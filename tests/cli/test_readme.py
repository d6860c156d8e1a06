"""The README's library snippet runs as is (against a sim cluster as its kubeconfig.yaml)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.kube.manifests import deployment

pytestmark = pytest.mark.sim_only

README = Path(__file__).resolve().parents[2] / "README.md"


def _library_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1, "the README has one Python snippet"
    return blocks[0]


async def test_the_readme_library_snippet_runs_as_is(sim, tmp_path):
    cluster = sim["sim-1"]
    shutil.copy(cluster.kubeconfig_path, tmp_path / "kubeconfig.yaml")
    (tmp_path / "app.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
        + deployment(replicas=1).replace("name: web\n", "name: web\n  namespace: shop\n", 1)
    )
    (tmp_path / "snippet.py").write_text(_library_snippet())
    out = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "snippet.py"], capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
        )
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 replicas ready"
