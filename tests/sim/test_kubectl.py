"""kubectl (Debian's, unmodified) runs a script of everyday commands against the cluster under test."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

from tests.tools import require_tool


@pytest.fixture(autouse=True)
def _kubectl_installed() -> None:
    require_tool("kubectl", "v1.32 or newer")

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: nginx:1.27
        env: [{name: MODE, value: one}]
      - name: side
        image: busybox:1.36
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web}
data: {a: "1"}
"""

SCRIPT = r"""
set -euo pipefail
k() { kubectl --namespace "$NS" "$@"; }

echo "== apply"
k apply --server-side -f "$MANIFEST"
k get -o json deployment web | grep '"name": "web"' > /dev/null
test "$(k get configmap -l app=web -o name)" = "configmap/settings"
test "$(k get configmap -l 'app in (db)' -o name)" = ""

echo "== wait"
k wait --for=condition=Available deployment/web --timeout=60s
k rollout status deployment web --timeout=60s

echo "== patch"
k patch deployment web --type strategic \
  -p '{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"nginx:1.28"}]}}}}'
test "$(k get deployment web -o jsonpath='{.spec.template.spec.containers[*].image}')" = "nginx:1.28 busybox:1.36"
k patch configmap settings --type merge -p '{"data":{"b":"2"}}'
k patch configmap settings --type json -p '[{"op":"replace","path":"/data/a","value":"9"}]'
test "$(k get configmap settings -o jsonpath='{.data.a}{.data.b}')" = "92"
k rollout status deployment web --timeout=60s

echo "== restart"
k rollout restart deployment web
k rollout status deployment web --timeout=60s
restarted_at='{.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}'
test -n "$(k get deployment web -o jsonpath="$restarted_at")"

echo "== dry run and diff"
sed 's/value: one/value: two/' "$MANIFEST" > "$CHANGED"
k apply --server-side --force-conflicts --dry-run=server -f "$CHANGED" | grep "server dry run" > /dev/null
test "$(k get deployment web -o jsonpath='{.spec.template.spec.containers[0].env[0].value}')" = "one"
set +e
k diff -f "$CHANGED" > "$DIFF_OUT"
rc=$?
set -e
test "$rc" = 1
grep -q -- "-          value: one" "$DIFF_OUT"
grep -q -- "+          value: two" "$DIFF_OUT"

echo "== api-resources"
kubectl api-resources | grep -E "^deployments +deploy +apps/v1 +true +Deployment"
kubectl api-resources --api-group=batch -o name | grep "^jobs.batch$" > /dev/null

echo "== delete"
k delete -f "$MANIFEST"
! k get deployment web 2>/dev/null
echo "== done"
"""


def test_kubectl_script(cluster, namespace, tmp_path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(MANIFEST)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig_path),
        "KUBECACHEDIR": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
        "NS": namespace,
        "MANIFEST": str(manifest),
        "CHANGED": str(tmp_path / "changed.yaml"),
        "DIFF_OUT": str(tmp_path / "diff.txt"),
    }
    if cluster.context:
        env["KUBECTL_CONTEXT"] = cluster.context
    script = SCRIPT.replace(
        'k() { kubectl --namespace "$NS" "$@"; }',
        'k() { kubectl ${KUBECTL_CONTEXT:+--context "$KUBECTL_CONTEXT"} --namespace "$NS" "$@"; }',
    )
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, textwrap.shorten(result.stdout, 4000) + "\n--- stderr ---\n" + result.stderr[-4000:]
    assert result.stdout.rstrip().endswith("== done")
