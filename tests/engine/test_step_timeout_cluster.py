"""A step's ``timeout:`` is its waiting operation's deadline too: a ``wait`` with ``timeout: PT2S`` gives up
after 2 s (not its 5-minute default) with what it last saw, not a bare "timed out"."""

from __future__ import annotations

import time

PLAYBOOK = """
id: waits
steps:
  - id: config
    type: apply
    namespace: {namespace}
    manifest: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: waits}}, data: {{phase: one}}}}
  - id: never
    type: wait
    kind: ConfigMap
    name: waits
    namespace: {namespace}
    jsonpath: "{{.data.phase}}"
    value: two
    timeout: PT2S
"""


def test_a_wait_step_gives_up_at_the_steps_timeout_saying_what_it_saw(fleet, cluster, namespace, tmp_path):
    path = tmp_path / "waits.yaml"
    path.write_text(PLAYBOOK.format(namespace=namespace))
    context = ["--context", cluster.context] if cluster.context else []
    targets = ["--kubeconfig", str(cluster.kubeconfig_path), *context]
    started = time.monotonic()
    result = fleet("run", str(path), *targets, "-o", "json")
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "did not hold within 2s" in result.stdout, result.stdout
    assert took < 60
