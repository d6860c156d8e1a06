"""``deploy/kustomize``: every overlay renders with kubectl's own kustomize, every object it renders
validates against the Kubernetes schema, and the overlay applies to the cluster under test."""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy.conftest import KUSTOMIZE, OVERLAYS, validated
from tests.tools import require_tool

EXPECTED_KINDS = {
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolumeClaim",
    "ConfigMap",
    "PodTemplate",
}


def kustomize(overlay: str) -> str:
    kubectl = require_tool("kubectl", "v1.32 or newer")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_there_are_staging_and_prod_overlays():
    assert OVERLAYS == ["prod", "staging"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_renders_objects_that_validate(overlay):
    objects = validated(kustomize(overlay), f"overlays/{overlay}")
    assert {o["kind"] for o in objects} == EXPECTED_KINDS
    assert all(o["metadata"]["labels"]["fleet.dev/environment"] == overlay for o in objects)
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    assert sorted(config_maps) == ["fleet-inventory", "fleet-playbooks"]
    assert "nightly-check.yaml" in config_maps["fleet-playbooks"]["data"]
    template = next(o for o in objects if o["kind"] == "PodTemplate")["template"]["spec"]
    assert template["serviceAccountName"] == "fleet"
    assert template["securityContext"]["runAsUser"] == 10001
    assert template["containers"][0]["image"].startswith("ghcr.io/example/fleet:")


def test_prod_patches_the_journal_size_and_the_run_pods_resources():
    objects = validated(kustomize("prod"), "overlays/prod")
    pvc = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    template = next(o for o in objects if o["kind"] == "PodTemplate")["template"]["spec"]
    assert template["containers"][0]["resources"]["limits"] == {"memory": "2Gi"}
    assert len(template["volumes"]) == 4, "a strategic merge patch keeps the base's volumes"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_applies_to_the_cluster(kubectl, overlay):
    path = str(KUSTOMIZE / "overlays" / overlay)
    try:
        applied = kubectl("apply", "-k", path)
        assert "persistentvolumeclaim/fleet-journal" in applied.stdout
        got = kubectl(
            "get", "-n", "fleet", "serviceaccount/fleet", "role/fleet-pod-steps", "podtemplate/fleet-run", "-o", "name"
        )
        assert got.stdout.split() == [
            "serviceaccount/fleet",
            "role.rbac.authorization.k8s.io/fleet-pod-steps",
            "podtemplate/fleet-run",
        ]
        env = kubectl("get", "namespace", "fleet", "-o", "jsonpath={.metadata.labels.fleet\\.dev/environment}")
        assert env.stdout == overlay
    finally:
        kubectl("delete", "-k", path, "--wait=false", "--ignore-not-found", check=False)
