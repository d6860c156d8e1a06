"""``deploy/kustomize/components/serve``: ``fleet serve`` in the cluster (Deployment, Service, a service
account that may create Jobs and nothing else, the runs' Job template) added to the base renders objects
that validate against the Kubernetes schema and applies to the cluster under test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.deploy.conftest import KUSTOMIZE, validated
from tests.tools import require_tool


def test_the_serve_component_renders_objects_that_validate_and_apply(kubectl, tmp_path: Path):
    tree = tmp_path / "kustomize"
    shutil.copytree(KUSTOMIZE, tree)
    overlay = tree / "overlays" / "with-serve"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [../../base]\ncomponents: [../../components/serve]\n"
    )
    binary = require_tool("kubectl", "v1.32 or newer")
    rendered = subprocess.run(
        [binary, "kustomize", str(overlay)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    objects = validated(rendered.stdout, "base + components/serve")
    serve = {(o["kind"], o["metadata"]["name"]): o for o in objects if "serve" in o["metadata"]["name"]}
    assert set(serve) == {
        ("ServiceAccount", "fleet-serve"), ("Role", "fleet-serve"), ("RoleBinding", "fleet-serve"),
        ("ConfigMap", "fleet-serve-job"), ("Deployment", "fleet-serve"), ("Service", "fleet-serve"),
    }  # fmt: skip
    assert all(o["metadata"]["namespace"] == "fleet" for o in serve.values())
    rules = serve[("Role", "fleet-serve")]["rules"]
    assert rules == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]
    args = serve[("Deployment", "fleet-serve")]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--launcher=job" in args
    assert "--job-template=/etc/fleet-serve/run-job.yaml" in args
    template = serve[("ConfigMap", "fleet-serve-job")]["data"]["run-job.yaml"]
    assert validated(template, "run-job.yaml")[0]["kind"] == "Job"
    (tmp_path / "all.yaml").write_text(rendered.stdout)
    try:
        applied = kubectl("apply", "-f", str(tmp_path / "all.yaml"))
        assert "deployment.apps/fleet-serve" in applied.stdout
    finally:
        kubectl("delete", "-f", str(tmp_path / "all.yaml"), "--wait=false", "--ignore-not-found", check=False)
