"""Bad playbooks fail ``fleet validate`` and ``fleet run`` with exit 2, file:line and field in one sentence,
no traceback, and no request to any cluster (the inventory points at a port nothing listens on)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

GOOD = """\
id: p
inputs:
  - {id: version, type: STRING, required: true}
steps:
  - id: app
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: c, namespace: default}
      data: {v: "{{ inputs.version }}"}
  - id: show
    type: assert
    condition: "outputs.app.created >= 0"
"""

CASES = [
    ("unknown step type", GOOD.replace("type: apply", "type: aply"), ":5: steps[0]: unknown step type 'aply'"),
    (
        "unknown option",
        GOOD.replace("    manifest:", "    waitUntilRedy: PT1M\n    manifest:"),
        "unknown option 'waitUntilRedy' (did you mean 'waitUntilReady'?)",
    ),
    ("duplicate ids", GOOD.replace("id: show", "id: app"), "duplicate step id 'app' (first on line 5)"),
    (
        "undefined variable",
        GOOD.replace("inputs.version", "inputs.versoin"),
        "'dict object' has no attribute 'versoin'",
    ),
    ("template syntax", GOOD.replace("{{ inputs.version }}", "{{ inputs.version }"), "template syntax error"),
    ("later step", GOOD.replace("outputs.app", "outputs.show"), "outputs.show names no earlier step"),
    ("missing step", GOOD.replace("outputs.app", "outputs.nope"), "outputs.nope names no earlier step"),
    (
        "bad selector",
        GOOD.replace("id: p\n", "id: p\nstrategy:\n  waves: [{select: 'tier in (a'}]\n"),
        "waves[0].select",
    ),
    (
        "wave leaves clusters out",
        GOOD.replace("id: p\n", "id: p\nstrategy:\n  waves: [{select: 'tier=none'}]\n"),
        "match no wave",
    ),
    (
        "bad budget",
        GOOD.replace("id: p\n", "id: p\nstrategy: {maxFailures: lots}\n"),
        "maxFailures 'lots' is neither a number nor a percentage",
    ),
    ("bad yaml", "id: p\nsteps: [\n", "invalid YAML"),
]


def _run(tmp_path, *args, extra=()):
    inventory = tmp_path / "inv.yaml"
    kubeconfig = tmp_path / "kc.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{name: x, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: x, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: x, user: x}}]\n"
    )
    inventory.write_text(
        f"clusters:\n  - {{name: a, labels: {{tier: gold}}, connection: {{kubeconfig: 'file:{kubeconfig}'}}}}\n"
    )
    env = {**os.environ, "FLEET_JOURNAL": str(tmp_path / "j.sqlite"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args, "-i", str(inventory), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_bad_playbook_is_an_input_error_before_any_cluster(tmp_path, command, text, message):
    playbook = tmp_path / "p.yaml"
    playbook.write_text(text)
    result = _run(tmp_path, command, str(playbook), extra=["--set", "version=1"])
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr.replace("\n", " "), result.stderr
    assert "p.yaml:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "j.sqlite").exists()  # nothing started


@pytest.mark.parametrize(
    ("sets", "message"),
    [([], "input 'version' is required"), (["--set", "nope=1"], "unknown input 'nope'")],
)
def test_missing_or_unknown_inputs_are_input_errors(tmp_path, sets, message):
    playbook = tmp_path / "p.yaml"
    playbook.write_text(GOOD)
    result = _run(tmp_path, "run", str(playbook), extra=sets)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_good_playbook_validates(tmp_path):
    playbook = tmp_path / "p.yaml"
    playbook.write_text(GOOD)
    result = _run(tmp_path, "validate", str(playbook), extra=["--set", "version=1"])
    assert result.returncode == 0, result.stderr
    assert "valid; 1 cluster(s) in 1 wave(s)" in result.stdout
